#pragma once
// Test support for the Valkey client's tests: a real redis-server (Redis 7
// speaks the same RESP2 as Valkey) as a child process on a random loopback
// port in a temporary directory, and an independent blocking client
// (hiredis) to inspect it. Every wait is bounded.
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace mf::valkey::test {

inline constexpr const char* redis_binary = "/usr/bin/redis-server";

inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// A blocking hiredis connection: the independent second client.
struct SyncClient {
  redisContext* c = nullptr;
  SyncClient(uint16_t port, const std::string& password) {
    timeval tv{0, 500000};
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c != nullptr && c->err == 0) {
      redisSetTimeout(c, timeval{2, 0});
      if (!password.empty()) freeReplyObject(command({"AUTH", password}));
    }
  }
  ~SyncClient() {
    if (c != nullptr) redisFree(c);
  }
  bool ok() const { return c != nullptr && c->err == 0; }
  redisReply* command(const std::vector<std::string>& argv) {
    std::vector<const char*> p;
    std::vector<size_t> l;
    for (const auto& a : argv) {
      p.push_back(a.data());
      l.push_back(a.size());
    }
    return static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), p.data(), l.data()));
  }
  // The integer answer, or -1000 on any failure.
  long long integer(const std::vector<std::string>& argv) {
    redisReply* r = command(argv);
    long long v = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1000;
    freeReplyObject(r);
    return v;
  }
  long long numsub(const std::string& channel) {
    redisReply* r = command({"PUBSUB", "NUMSUB", channel});
    long long v = -1;
    if (r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2) v = r->element[1]->integer;
    freeReplyObject(r);
    return v;
  }
};

// redis-server as a child process: random port, temporary directory, no
// persistence. Killed (and its directory removed) by the destructor.
class RedisServer {
 public:
  // cluster: --cluster-enabled yes, its nodes file in the directory, a 1 s
  // node timeout; start() then picks a port of at most 55535 (the cluster
  // bus listens on port + 10000, and redis-server refuses a higher one).
  explicit RedisServer(std::string password = {}, bool cluster = false)
      : password_(std::move(password)), cluster_(cluster) {
    char pattern[] = "/tmp/mf-valkey-test-XXXXXX";
    if (mkdtemp(pattern) != nullptr) dir_ = pattern;
  }
  ~RedisServer() {
    kill_now();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  // A free port is picked, then bound by the server: another process may
  // take it in between, so a failed start tries a new port.
  bool start() {
    for (int attempt = 0; attempt < 20; ++attempt) {
      port_ = free_loopback_port();
      // A cluster node's bus listens on port + 10000.
      if (cluster_ && port_ > 55535) continue;
      if (port_ != 0 && launch()) return true;
      kill_now();
    }
    return false;
  }
  // Same port, same directory (redis-server sets SO_REUSEADDR).
  bool restart() { return launch(); }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& password() const { return password_; }

 private:
  bool launch() {
    std::vector<std::string> args = {redis_binary, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--dir", dir_, "--save", "", "--appendonly", "no", "--daemonize", "no",
                                      "--logfile", dir_ + "/redis.log", "--loglevel", "warning"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    if (cluster_) {
      for (const char* a : {"--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-config-file"})
        args.push_back(a);
      args.push_back(dir_ + "/nodes.conf");
    }
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(redis_binary, argv.data());
      _exit(127);
    }
    if (pid_ < 0) return false;
    // Up within 5 s: it answers PING.
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // exited: port taken
      }
      SyncClient probe(port_, password_);
      if (probe.ok()) {
        redisReply* r = probe.command({"PING"});
        bool up = r != nullptr && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (up) return true;
      }
      usleep(50'000);
    }
    return false;
  }

  std::string password_;
  bool cluster_ = false;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// The text of a status, error or string reply ("(nil)", "(other)", "(no
// reply)" otherwise); frees the reply.
inline std::string reply_text(redisReply* r) {
  std::string text = r != nullptr && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR ||
                                      r->type == REDIS_REPLY_STRING)
                         ? std::string(r->str, r->len)
                         : std::string(r == nullptr ? "(no reply)" : r->type == REDIS_REPLY_NIL ? "(nil)" : "(other)");
  freeReplyObject(r);
  return text;
}

// Started cluster-enabled servers made one cluster, each the primary of an
// equal part of the 16384 slots (CLUSTER ADDSLOTSRANGE, CLUSTER MEET), and
// waited for (bounded: 20 s) until every node reports cluster_state:ok and
// knows every other. `ranges` gets each node's first and last slot.
inline bool form_cluster(std::span<RedisServer> nodes, std::vector<std::pair<int, int>>* ranges = nullptr) {
  const int n = static_cast<int>(nodes.size());
  for (int i = 0; i < n; ++i) {
    const int first = 16384 * i / n;
    const int last = 16384 * (i + 1) / n - 1;
    if (ranges != nullptr) ranges->emplace_back(first, last);
    SyncClient c(nodes[static_cast<size_t>(i)].port(), {});
    if (reply_text(c.command({"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)})) != "OK")
      return false;
    if (i > 0 && reply_text(c.command({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes[0].port())})) != "OK")
      return false;
  }
  const std::string known = "cluster_known_nodes:" + std::to_string(n);
  for (int attempt = 0; attempt < 400; ++attempt) {
    bool converged = true;
    for (auto& node : nodes) {
      SyncClient c(node.port(), {});
      std::string info = reply_text(c.command({"CLUSTER", "INFO"}));
      converged = converged && info.find("cluster_state:ok") != std::string::npos && info.find(known) != std::string::npos;
    }
    if (converged) return true;
    usleep(50'000);
  }
  return false;
}

// Adds one replica to each primary of a formed cluster (replicas[i] of
// primaries[i]: CLUSTER MEET, CLUSTER REPLICATE), and waits (bounded: 30 s)
// until every replica's link to its primary is up and every node reports
// cluster_state:ok.
inline bool add_replicas(std::span<RedisServer> primaries, std::span<RedisServer> replicas) {
  for (size_t i = 0; i < replicas.size(); ++i) {
    SyncClient c(replicas[i].port(), {});
    if (reply_text(c.command({"CLUSTER", "MEET", "127.0.0.1", std::to_string(primaries[0].port())})) != "OK")
      return false;
  }
  const std::string known = "cluster_known_nodes:" + std::to_string(primaries.size() + replicas.size());
  for (size_t i = 0; i < replicas.size(); ++i) {
    SyncClient primary(primaries[i].port(), {});
    const std::string id = reply_text(primary.command({"CLUSTER", "MYID"}));
    SyncClient c(replicas[i].port(), {});
    bool done = false;
    // The replica must know its primary (gossip) before it can follow it.
    for (int attempt = 0; attempt < 200 && !done; ++attempt) {
      done = reply_text(c.command({"CLUSTER", "REPLICATE", id})) == "OK";
      if (!done) usleep(50'000);
    }
    if (!done) return false;
  }
  for (int attempt = 0; attempt < 600; ++attempt) {
    bool ready = true;
    for (auto* group : {&primaries, &replicas})
      for (auto& node : *group) {
        SyncClient c(node.port(), {});
        std::string info = reply_text(c.command({"CLUSTER", "INFO"}));
        ready = ready && info.find("cluster_state:ok") != std::string::npos && info.find(known) != std::string::npos;
      }
    for (auto& node : replicas) {
      SyncClient c(node.port(), {});
      std::string info = reply_text(c.command({"INFO", "replication"}));
      ready = ready && info.find("master_link_status:up") != std::string::npos &&
              info.find("master_sync_in_progress:0") != std::string::npos;
    }
    if (ready) return true;
    usleep(50'000);
  }
  return false;
}

}  // namespace mf::valkey::test
