#include "perf/load_client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <random>

#include "common/codec/http_request_head.h"
#include "common/http/head_accumulator.h"
#include "common/net/listen_socket.h"
#include "common/codec/http_response.h"
#include "common/runtime/provided_buffer_ring.h"
#include "common/codec/websocket_upgrade.h"

namespace mf::perf {
namespace {

constexpr std::string_view subprotocol = "meshedflow.v1";
constexpr size_t padding = ProvidedBufferRing::tail_padding;
// Bytes of a signal's `data` besides the padding: {"t":"<16 digits>","p":""}.
constexpr size_t signal_data_overhead = 31;
// Longer than any HTTP response head the edge writes.
constexpr size_t max_response_head_bytes = 16 * 1024;
// A refused signal of a pair that never got one through is retried after
// this: the target may not be visible yet (another edge). Slow enough to stay
// well under the edge's error limit (20 errors per 10 s close with 1008).
constexpr uint64_t warmup_retry_ms = 600;
constexpr uint64_t drain_ns = 500'000'000;
constexpr uint64_t close_grace_ms = 3000;
constexpr uint32_t max_opens_per_tick = 512;

std::string_view errno_name(int error) {
  const char* name = strerrorname_np(error);
  return name != nullptr ? std::string_view(name) : std::string_view("unknown errno");
}

// The value of the first `"key":"value"` whose opening matches `prefix`
// (e.g. "\"type\":\""). The edge writes compact JSON and the values read here
// (types, codes) contain no escapes.
std::string_view string_field(std::string_view text, std::string_view prefix) {
  size_t at = text.find(prefix);
  if (at == std::string_view::npos) return {};
  size_t start = at + prefix.size();
  size_t end = text.find('"', start);
  if (end == std::string_view::npos) return {};
  return text.substr(start, end - start);
}

uint64_t next_random(uint64_t& state) {
  // xorshift64*: masks and nonces need no cryptographic strength here.
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

// tracker (aquatic_ws's load test, docs/benchmarks.md "Tracker"): offers
// per announce (also its numwant), a 47-character dummy SDP, and swarm
// sizes from a Gamma(shape 0.2, scale 100) distribution over 10,000
// info_hashes: most connections share a few big swarms.
constexpr uint32_t tracker_offers = 10;
constexpr std::string_view tracker_sdp = "v=0 o=- 1 1 IN IP4 127.0.0.1 s=- t=0 0 a=mfload";  // 47 characters, nothing to escape
constexpr uint32_t tracker_swarms = 10000;
constexpr double tracker_gamma_shape = 0.2, tracker_gamma_scale = 100;

// A seed per connection (its swarm must not depend on the shard count).
uint64_t random_state_for(uint32_t global_index) { return (uint64_t{global_index} + 1) * 0x9E3779B97F4A7C15ull | 1; }

uint32_t tracker_swarm_index(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gamma(tracker_gamma_shape, tracker_gamma_scale);
  double x = gamma(rng);
  return static_cast<uint32_t>(std::min<double>(std::floor(x), tracker_swarms - 1));
}

}  // namespace

std::string_view scenario_name(Scenario scenario) {
  switch (scenario) {
    case Scenario::join: return "join";
    case Scenario::idle: return "idle";
    case Scenario::relay: return "relay";
    case Scenario::cross: return "cross";
    case Scenario::echo: return "echo";
    case Scenario::handshake: return "handshake";
    case Scenario::soak: return "soak";
    case Scenario::tracker: return "tracker";
  }
  return "?";
}

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::connect: return "connect";
    case ErrorKind::tls: return "tls";
    case ErrorKind::upgrade: return "upgrade";
    case ErrorKind::protocol: return "protocol";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::sdk_error: return "error";
    case ErrorKind::close: return "close";
  }
  return "?";
}

void ErrorCounts::add(ErrorKind kind, std::string_view key, uint64_t n) {
  counts[{kind, std::string(key)}] += n;
}

void ErrorCounts::merge(const ErrorCounts& other) {
  for (const auto& [key, n] : other.counts) counts[key] += n;
}

uint64_t ErrorCounts::total() const {
  uint64_t sum = 0;
  for (const auto& entry : counts) sum += entry.second;
  return sum;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::optional<uint64_t> read_vm_rss_kb(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* file = std::fopen(path, "r");
  if (file == nullptr) return std::nullopt;
  char line[256];
  std::optional<uint64_t> rss;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
      rss = kb;
      break;
    }
  }
  std::fclose(file);
  return rss;
}

std::optional<CpuTicks> read_cpu_ticks(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* file = std::fopen(path, "r");
  if (file == nullptr) return std::nullopt;
  char line[1024];
  const bool read = std::fgets(line, sizeof line, file) != nullptr;
  std::fclose(file);
  if (!read) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: the fields
  // after it start at the last ')'. utime and stime are fields 14 and 15.
  const char* rest = std::strrchr(line, ')');
  if (rest == nullptr) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return std::nullopt;
  return CpuTicks{utime, stime};
}

std::optional<uint64_t> read_tcp_out_segments() {
  FILE* file = std::fopen("/proc/net/snmp", "r");
  if (file == nullptr) return std::nullopt;
  // Two lines per protocol: the field names, then the values.
  char names[1024], values[1024];
  std::optional<uint64_t> out;
  while (!out && std::fgets(names, sizeof names, file) != nullptr) {
    if (std::strncmp(names, "Tcp:", 4) != 0 || std::fgets(values, sizeof values, file) == nullptr) continue;
    char* name_state = nullptr;
    char* value_state = nullptr;
    const char* name = strtok_r(names, " \n", &name_state);
    const char* value = strtok_r(values, " \n", &value_state);
    while (name != nullptr && value != nullptr) {
      if (std::strcmp(name, "OutSegs") == 0) {
        out = std::strtoull(value, nullptr, 10);
        break;
      }
      name = strtok_r(nullptr, " \n", &name_state);
      value = strtok_r(nullptr, " \n", &value_state);
    }
  }
  std::fclose(file);
  return out;
}

std::optional<uint64_t> count_descriptors(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR* dir = opendir(path);
  if (dir == nullptr) return std::nullopt;
  uint64_t n = 0;
  while (dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') ++n;
  closedir(dir);
  return n;
}

std::expected<TargetUrl, std::string> parse_target_url(std::string_view url) {
  TargetUrl t;
  t.text = std::string(url);
  auto fail = [&](std::string_view why) {
    return std::unexpected(fmt::format("--url {}: {}", url, why));
  };
  std::string_view rest;
  if (url.starts_with("ws://")) {
    rest = url.substr(5);
  } else if (url.starts_with("wss://")) {
    t.tls = true;
    rest = url.substr(6);
  } else {
    return fail("the scheme must be ws:// or wss://");
  }
  size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (target.empty()) target = "/ws";
  if (target.front() == '?') return fail("a query needs a path before it, e.g. /ws?x=1");
  if (target.find_first_of(" \t\r\n#") != std::string_view::npos) return fail("the path must not contain spaces or '#'");
  t.target = std::string(target);
  t.host_header = std::string(authority);

  std::string_view host;
  std::string_view port_text;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("expected :PORT after the [IPv6] host");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (host.empty()) return fail("the host is missing");
  unsigned port = t.tls ? 443 : 80;
  if (!port_text.empty() || authority.ends_with(":")) {
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return fail("the port must be 1..65535");
  }
  t.host = std::string(host);
  std::string numeric = host == "localhost" ? std::string("127.0.0.1") : std::string(host);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, numeric.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) != 127)
      return fail(fmt::format("host {} is not on loopback: mf-load only targets 127.0.0.0/8 or ::1", host));
    auto* a = reinterpret_cast<sockaddr_in*>(&t.address);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    a->sin_addr = v4;
    t.address_length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, numeric.c_str(), &v6) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6))
      return fail(fmt::format("host {} is not on loopback: mf-load only targets 127.0.0.0/8 or ::1", host));
    auto* a = reinterpret_cast<sockaddr_in6*>(&t.address);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    a->sin6_addr = v6;
    t.address_length = sizeof(sockaddr_in6);
  } else {
    return fail(fmt::format("host {} must be an IP literal on loopback or localhost (no DNS)", host));
  }
  return t;
}

// ---------------------------------------------------------------------------

struct LoadClient::FrameHandler {
  LoadClient& c;
  Peer& p;

  void on_message(std::string_view text, bool) { c.on_sdk_message(p, text); }
  void on_out_of_buffers() { c.fail(p, ErrorKind::protocol, "buffer pool exhausted"); }
  void on_ping(std::span<const uint8_t> payload) {
    c.report_.pings_answered++;
    c.send_frame(p, ws::Opcode::pong, payload);
  }
  void on_pong(std::span<const uint8_t>) {}
  void on_close(uint16_t code, std::string_view) {
    if (p.phase == PeerPhase::closing) return;
    if (!c.closing_) c.report_.errors.add(ErrorKind::close, fmt::format("{}", code));
    // Echo the code (RFC 6455 5.5.1), then close our side.
    uint8_t payload[125];
    size_t n = code == ws::close_code::no_status ? 0 : ws::encode_close_payload(payload, code, {});
    bool was_open = p.websocket_open;
    c.lose(p);
    if (was_open) c.send_frame(p, ws::Opcode::close, {payload, n});
    p.transport.send_close_notify();
    p.phase = PeerPhase::closing;
    p.messages.halt();
    c.reactor_.close(p.socket, CloseMode::graceful);
  }
  void on_error(uint16_t code, std::string_view why) {
    c.fail(p, ErrorKind::protocol, fmt::format("{} ({})", why, code));
  }
};


std::expected<std::unique_ptr<ShardService>, std::string> LoadClient::create(Shard& shard, LoadRun& run) {
  auto client = std::make_unique<LoadClient>(shard, run);
  bool any_tls = false;
  for (const TargetUrl& url : run.options.urls) any_tls |= url.tls;
  if (any_tls) {
    tls::ClientContextConfig config;
    config.verify_peer = !run.options.insecure;
    config.ca_file = run.options.ca_file;
    // Every connection is a new identity; resumption would measure less work.
    config.enable_resumption = false;
    auto context = tls::Context::make_client(config);
    if (!context) return std::unexpected(context.error());
    client->tls_context_.emplace(std::move(*context));
  }
  LoadClient* self = client.get();
  shard.reactor().add_periodic(1, [self] { self->tick(); });
  return std::unique_ptr<ShardService>(std::move(client));
}

LoadClient::LoadClient(Shard& shard, LoadRun& run)
    : shard_(shard),
      reactor_(shard.reactor()),
      run_(run),
      options_(run.options),
      progress_(run.progress[shard.id()]),
      peer_by_slot_(shard.reactor().options().max_sockets) {
  const uint32_t shards = shard.count();
  const uint32_t me = shard.id();
  const bool paired = options_.scenario == Scenario::relay || options_.scenario == Scenario::cross ||
                      options_.scenario == Scenario::soak;
  const uint32_t total_units = paired ? options_.connections / 2 : options_.connections;
  unit_count_ = me < total_units ? (total_units - me + shards - 1) / shards : 0;
  peer_count_ = paired ? unit_count_ * 2 : unit_count_;
  units_per_second_ = options_.connect_rate / shards / (paired ? 2.0 : 1.0);
  peers_ = std::make_unique<Peer[]>(peer_count_);
  const uint32_t url_count = static_cast<uint32_t>(options_.urls.size());
  auto name = [&](Peer& p, uint32_t global) {
    auto r = fmt::format_to_n(p.peer_id, sizeof p.peer_id - 1, "{}-{}", run_.run_id, global);
    p.peer_id_length = static_cast<uint8_t>(std::min<size_t>(r.size, sizeof p.peer_id - 1));
    p.global_index = global;
  };
  for (uint32_t unit = 0; unit < unit_count_; ++unit) {
    const uint32_t global_unit = me + unit * shards;
    if (!paired) {
      Peer& p = peers_[unit];
      name(p, global_unit);
      p.url_index = global_unit % url_count;
      p.stream = global_unit % options_.streams;
      p.rendition = (global_unit / options_.streams) % options_.renditions;
      if (options_.scenario == Scenario::tracker) p.info_hash = tracker_swarm_index(random_state_for(global_unit));
      continue;
    }
    Pair pair;
    pair.first = unit * 2;
    pairs_.push_back(pair);
    for (uint32_t side = 0; side < 2; ++side) {
      Peer& p = peers_[unit * 2 + side];
      name(p, global_unit * 2 + side);
      p.pair = unit;
      p.partner = unit * 2 + (1 - side);
      p.stream = global_unit % options_.streams;
      p.rendition = (global_unit / options_.streams) % options_.renditions;
      uint32_t url = options_.scenario == Scenario::cross ? global_unit + side : global_unit;
      p.url_index = url % url_count;
    }
  }
  decoder_config_.max_message_bytes = std::max<uint32_t>(1 << 20, options_.size * 2 + 4096);
  decoder_config_.accept_binary = false;
  plaintext_scratch_.resize(size_t{16} * 1024 + 1024 + padding);
  // A tracker announce with its offers is about 2 KB.
  const size_t body = std::max<size_t>(options_.size, options_.scenario == Scenario::tracker ? 4096 : 0);
  workspace_.emplace(reactor_.pool(), decoder_config_.max_message_bytes, ws::max_header_bytes + body + 1024);
  json_scratch_.resize(body + 1024);
  padding_.assign(options_.size > signal_data_overhead ? options_.size - signal_data_overhead : 0, 'x');
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = monotonic_ns();
  random_state_ = (seed ^ (uint64_t{me} << 32)) | 1;
  update_units_resolved();
}

LoadClient::~LoadClient() {
  for (uint32_t i = 0; i < peer_count_; ++i) peers_[i].messages.release(reactor_.pool());
  finish_report();
}

void LoadClient::finish_report() {
  if (report_written_) return;
  report_written_ = true;
  report_.connects_started = progress_.connects_started.get();
  report_.signals_sent = progress_.signals_sent.get();
  run_.reports[shard_.id()] = report_;
}

LoadClient::Peer* LoadClient::peer_of(SocketHandle socket) {
  if (socket.slot >= peer_by_slot_.created()) return nullptr;
  uint32_t index = peer_by_slot_[socket.slot];
  if (index >= peer_count_ || peers_[index].socket != socket) return nullptr;
  return &peers_[index];
}

// ---- scheduling ----

void LoadClient::tick() {
  const uint64_t now = monotonic_ns();
  if (closing_) {
    if (reactor_.now_ms() >= close_deadline_ms_) {
      // Peers that do not finish their close handshake in time are cut.
      for (uint32_t i = 0; i < peer_count_; ++i)
        if (peers_[i].socket.valid()) reactor_.close(peers_[i].socket, CloseMode::abort);
    }
    return;
  }
  const RunPhase phase = run_.phase.load(std::memory_order_acquire);
  if (phase == RunPhase::closing) {
    close_all();
    return;
  }
  if (options_.scenario == Scenario::tracker && phase == RunPhase::measure && !tracker_loops_started_) {
    // Every connection is open (or failed): the loops start together, so
    // the load does not starve the handshakes of the ramp.
    tracker_loops_started_ = true;
    for (uint32_t i = 0; i < peer_count_; ++i)
      if (peers_[i].phase == PeerPhase::joined) send_tracker_announce(peers_[i]);
  }
  if (ramp_start_ns_ == 0) ramp_start_ns_ = now;
  if (!ramp_stopped_ && options_.scenario == Scenario::join &&
      now >= run_.start_ns + static_cast<uint64_t>(options_.duration_s * 1e9)) {
    ramp_stopped_ = true;
    update_units_resolved();
  }
  if (!ramp_stopped_ && units_opened_ < unit_count_) {
    double elapsed_s = static_cast<double>(now - ramp_start_ns_) / 1e9;
    uint64_t allowed = static_cast<uint64_t>(units_per_second_ * elapsed_s) + 1;
    if (allowed > unit_count_) allowed = unit_count_;
    uint32_t opened_now = 0;
    while (units_opened_ < allowed && opened_now < max_opens_per_tick) {
      open_unit(units_opened_++);
      ++opened_now;
    }
    update_units_resolved();
  }
  if (options_.message_rate > 0 && phase == RunPhase::measure) open_loop_sends(now);
  if (options_.scenario == Scenario::soak && phase == RunPhase::measure) churn(now);
  if (shard_.id() == 0) {
    if (options_.scenario == Scenario::soak && phase != RunPhase::ramp) sample_soak(now);
    coordinate();
    if (options_.progress && now - last_progress_ns_ >= 1'000'000'000) print_progress();
  }
}

void LoadClient::update_units_resolved() {
  bool all_opened = units_opened_ == unit_count_ || ramp_stopped_;
  progress_.units_resolved.store(all_opened && units_resolved_ == units_opened_, std::memory_order_relaxed);
}

void LoadClient::sample_cpu(std::vector<std::optional<CpuTicks>>& ticks) {
  ticks.clear();
  for (int pid : options_.cpu_pids) ticks.push_back(read_cpu_ticks(pid));
}

void LoadClient::coordinate() {
  const uint64_t now = monotonic_ns();
  RunPhase phase = run_.phase.load(std::memory_order_relaxed);
  auto end_measure = [&] {
    run_.measure_end_ns.store(now, std::memory_order_release);
    uint64_t open = 0;
    for (uint32_t s = 0; s < shard_.count(); ++s) open += run_.progress[s].open_websockets.get();
    run_.open_at_measure_end.store(open);
    sample_cpu(run_.cpu_end_ticks);
    run_.tcp_segments_end = read_tcp_out_segments();
    if (options_.pid != 0) {
      if (auto rss = read_vm_rss_kb(options_.pid)) run_.rss_end_kb.store(*rss);
    }
    if (options_.scenario == Scenario::soak) {  // the last sample, at the end of the window
      next_sample_ns_ = 0;
      sample_soak(now);
    }
  };
  auto go_closing = [&] {
    run_.phase.store(RunPhase::closing, std::memory_order_release);
    run_.group->request_stop();
  };
  if (phase == RunPhase::closing) return;
  if (now >= run_.hard_deadline_ns) {
    run_.hit_hard_deadline.store(true);
    if (run_.measure_end_ns.load() == 0) end_measure();
    go_closing();
    return;
  }
  bool all_resolved = true;
  for (uint32_t s = 0; s < shard_.count(); ++s)
    all_resolved &= run_.progress[s].units_resolved.load(std::memory_order_relaxed);
  const uint64_t duration_ns = static_cast<uint64_t>(options_.duration_s * 1e9);
  if (all_resolved && phase != RunPhase::drain) {
    uint64_t joined = 0;
    for (uint32_t s = 0; s < shard_.count(); ++s) joined += run_.progress[s].joined.get();
    if (joined == 0) {  // every connection failed: nothing left to measure
      end_measure();
      go_closing();
      return;
    }
  }
  switch (phase) {
    case RunPhase::ramp:
      if (options_.scenario == Scenario::join) {
        const uint64_t cap = run_.start_ns + duration_ns + uint64_t{options_.handshake_timeout_ms} * 1'000'000;
        if (all_resolved || now >= cap) {
          end_measure();
          go_closing();
        }
        return;
      }
      if (all_resolved || now >= run_.ramp_deadline_ns) {
        sample_cpu(run_.cpu_start_ticks);
        run_.tcp_segments_start = read_tcp_out_segments();
        run_.measure_start_ns.store(now, std::memory_order_release);
        run_.phase.store(RunPhase::measure, std::memory_order_release);
      }
      return;
    case RunPhase::measure:
      if (now >= run_.measure_start_ns.load() + duration_ns) {
        end_measure();
        // Nothing is in flight to drain: idle holds, handshake cycles are
        // cut by the close (unfinished ones were never counted).
        if (options_.scenario == Scenario::idle || options_.scenario == Scenario::handshake) {
          go_closing();
        } else {
          drain_until_ns_ = now + drain_ns;
          run_.phase.store(RunPhase::drain, std::memory_order_release);
        }
      }
      return;
    case RunPhase::drain:
      if (now >= drain_until_ns_) go_closing();
      return;
    case RunPhase::closing:
      return;
  }
}

void LoadClient::print_progress() {
  const uint64_t now = monotonic_ns();
  const bool cycling = options_.scenario == Scenario::handshake;
  uint64_t started = 0, joined = 0, failed = 0, open = 0, received = 0;
  for (uint32_t s = 0; s < shard_.count(); ++s) {
    const ShardProgress& sp = run_.progress[s];
    started += sp.connects_started.get();
    joined += sp.joined.get();
    failed += sp.failed.get();
    open += sp.open_websockets.get();
    received += cycling ? sp.handshakes.get() : sp.signals_received.get();
  }
  double dt = last_progress_ns_ == 0 ? 0 : static_cast<double>(now - last_progress_ns_) / 1e9;
  double rate = dt > 0 ? static_cast<double>(received - last_progress_received_) / dt : 0;
  std::fprintf(stderr, "\r[%6.1fs] %s: started %llu  joined %llu  failed %llu  open %llu  %s/s %.0f   ",
               static_cast<double>(now - run_.start_ns) / 1e9, std::string(scenario_name(options_.scenario)).c_str(),
               static_cast<unsigned long long>(started), static_cast<unsigned long long>(joined),
               static_cast<unsigned long long>(failed), static_cast<unsigned long long>(open),
               cycling ? "handshakes" : "signals", rate);
  std::fflush(stderr);
  last_progress_ns_ = now;
  last_progress_received_ = received;
}

// ---- opening connections ----

void LoadClient::open_unit(uint32_t unit) {
  if (pairs_.empty()) {
    open_peer(unit);
    return;
  }
  open_peer(unit * 2);
  open_peer(unit * 2 + 1);
}

void LoadClient::open_peer(uint32_t index) {
  Peer& p = peers_[index];
  const TargetUrl& url = options_.urls[p.url_index];
  p.connect_ns = monotonic_ns();
  if (report_.first_connect_ns == 0) report_.first_connect_ns = p.connect_ns;
  progress_.connects_started.add();
  const int family = url.address.ss_family;
  auto opened = open_outbound_socket(family);
  if (!opened) {
    report_.errors.add(ErrorKind::connect, fmt::format("socket {}", errno_name(-opened.error())));
    resolve(p, false);
    p.phase = PeerPhase::gone;
    return;
  }
  int fd = *opened;
  int one = 1;
  if (family == AF_INET && options_.source_addresses > 0) {
    // The kernel picks the port at connect() time, per 4-tuple, so each
    // source address has its own ephemeral range.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in source{};
    source.sin_family = AF_INET;
    // A handshake slot moves to the next address on each cycle, so its
    // TIME_WAIT sockets spread over every source address's port range.
    source.sin_addr.s_addr = htonl(0x7F000002u + (p.global_index + p.cycles) % options_.source_addresses);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
      report_.errors.add(ErrorKind::connect, fmt::format("bind {}", errno_name(errno)));
      ::close(fd);
      resolve(p, false);
      p.phase = PeerPhase::gone;
      return;
    }
  }
  auto handle = reactor_.connect_adopted(fd, reinterpret_cast<const sockaddr*>(&url.address), url.address_length, this);
  if (!handle) {
    report_.errors.add(ErrorKind::connect, fmt::format("adopt {}", errno_name(-handle.error())));
    resolve(p, false);
    p.phase = PeerPhase::gone;
    return;
  }
  p.socket = *handle;
  p.phase = PeerPhase::connecting;
  ++p.cycles;
  peer_by_slot_.ensure(handle->slot) = index;
}

void LoadClient::on_connected(SocketHandle socket, int error) {
  Peer* p = peer_of(socket);
  if (p == nullptr) return;
  if (error != 0) {
    fail(*p, ErrorKind::connect, errno_name(-error));
    return;
  }
  if (closing_) {
    reactor_.close(socket, CloseMode::abort);
    return;
  }
  progress_.connected.add();
  const uint64_t elapsed_ms = (monotonic_ns() - p->connect_ns) / 1'000'000;
  const uint64_t left_ms = options_.handshake_timeout_ms > elapsed_ms ? options_.handshake_timeout_ms - elapsed_ms : 1;
  reactor_.arm_timer(socket, reactor_.now_ms() + left_ms);
  const TargetUrl& url = options_.urls[p->url_index];
  if (!url.tls) {
    p->transport.start_plain(reactor_, socket);
    send_upgrade_request(*p);
    return;
  }
  auto init = p->transport.start_tls(reactor_, socket, *tls_context_, tls::Role::client, url.host);
  if (!init) {
    fail(*p, ErrorKind::tls, "session init");
    return;
  }
  p->phase = PeerPhase::tls;
  auto hello = p->transport.start_client_handshake();
  if (!hello) fail(*p, ErrorKind::tls, hello.error().reason);
}

void LoadClient::send_upgrade_request(Peer& p) {
  const TargetUrl& url = options_.urls[p.url_index];
  uint8_t nonce[16];
  uint64_t a = next_random(random_state_), b = next_random(random_state_);
  std::memcpy(nonce, &a, 8);
  std::memcpy(nonce + 8, &b, 8);
  p.key = http::websocket_key_from_nonce(std::span<const uint8_t, 16>(nonce, 16));
  // ?stream= lets an ingress keep a stream's viewers on one edge (spec 1).
  char target[512];
  const char separator = url.target.find('?') == std::string::npos ? '?' : '&';
  auto t = fmt::format_to_n(target, sizeof target, "{}{}stream={}-s{}", url.target, separator, run_.run_id, p.stream);
  char request[1024];
  size_t n = http::format_upgrade_request(request, url.host_header,
                                          std::string_view(target, std::min(t.size, sizeof target)),
                                          std::string_view(p.key.data(), p.key.size()), subprotocol);
  if (n == 0) {
    fail(p, ErrorKind::protocol, "cannot format the upgrade request");
    return;
  }
  p.phase = PeerPhase::upgrade;
  if (!write(p, {reinterpret_cast<const uint8_t*>(request), n})) fail(p, ErrorKind::protocol, "send failed");
}

// ---- receiving ----

void LoadClient::on_received(SocketHandle socket, std::span<uint8_t> bytes) {
  Peer* p = peer_of(socket);
  if (p == nullptr || p->phase == PeerPhase::closing || p->phase == PeerPhase::gone) return;
  on_transport_bytes(*p, bytes);
}

void LoadClient::on_transport_bytes(Peer& p, std::span<uint8_t> bytes) {
  std::span<uint8_t> scratch(plaintext_scratch_.data(), plaintext_scratch_.size() - padding);
  auto progress = p.transport.read(bytes, scratch, [&](std::span<uint8_t> plain) {
    if (p.phase != PeerPhase::closing && p.phase != PeerPhase::gone) on_plaintext(p, plain);
  });
  if (!progress) {
    fail(p, ErrorKind::tls, progress.error().reason);
    return;
  }
  if (*progress == tls::Progress::handshake_completed && p.phase == PeerPhase::tls) {
    if (options_.scenario == Scenario::handshake && !options_.upgrade) {
      on_handshake_done(p);
    } else {
      send_upgrade_request(p);
    }
  } else if (*progress == tls::Progress::peer_closed && p.phase != PeerPhase::closing) {
    fail(p, ErrorKind::tls, "close_notify from the server");
  }
}

void LoadClient::on_plaintext(Peer& p, std::span<uint8_t> bytes) {
  switch (p.phase) {
    case PeerPhase::upgrade:
      on_head_bytes(p, bytes);
      return;
    case PeerPhase::joining:
    case PeerPhase::joined: {
      FrameHandler handler{*this, p};
      p.messages.feed(bytes, handler, *workspace_);
      return;
    }
    case PeerPhase::tls:
      fail(p, ErrorKind::protocol, "data before the upgrade request");
      return;
    case PeerPhase::idle:
    case PeerPhase::connecting:
    case PeerPhase::closing:
    case PeerPhase::gone:
      return;
  }
}

void LoadClient::on_head_bytes(Peer& p, std::span<uint8_t> bytes) {
  // The workspace's message buffer (1 MiB or more) is the scratch: no
  // message is in it before the upgrade.
  http::HeadProgress found =
      http::accumulate_head(p.head, reactor_.pool(), bytes, workspace_->message(), max_response_head_bytes);
  switch (found.status) {
    case http::HeadStatus::need_more:
      return;
    case http::HeadStatus::out_of_memory:
      fail(p, ErrorKind::protocol, "buffer pool exhausted");
      return;
    case http::HeadStatus::too_large:
      fail(p, ErrorKind::protocol, "response head too large");
      return;
    case http::HeadStatus::complete:
      break;
  }
  std::span<uint8_t> rest = found.rest;
  auto parsed = http::parse_response_head(found.head);
  if (!parsed) {
    fail(p, ErrorKind::protocol, "unparsable response head");
    return;
  }
  if (parsed->status != 101) {
    fail(p, ErrorKind::upgrade, fmt::format("{}", parsed->status));
    return;
  }
  if (!http::is_valid_upgrade_response(*parsed, std::string_view(p.key.data(), p.key.size()), subprotocol)) {
    fail(p, ErrorKind::protocol, "invalid 101 response");
    return;
  }
  p.messages.start(ws::Role::client, &decoder_config_);
  p.phase = PeerPhase::joining;
  p.websocket_open = true;
  progress_.open_websockets.add();
  if (options_.scenario == Scenario::handshake) {
    on_handshake_done(p);
    return;
  }
  if (options_.scenario == Scenario::echo || options_.scenario == Scenario::tracker) {
    if (options_.scenario == Scenario::echo) on_echo_open(p);
    else on_tracker_open(p);
    if (p.phase != PeerPhase::joined) return;
  } else if (!send_join(p)) {
    return;
  }
  if (!rest.empty()) {
    FrameHandler handler{*this, p};
    p.messages.feed(rest, handler, *workspace_);
  }
}

void LoadClient::on_sdk_message(Peer& p, std::string_view text) {
  if (p.phase == PeerPhase::closing || p.phase == PeerPhase::gone) return;
  if (options_.scenario == Scenario::echo) {
    // The message is our own, back: {"t":"…","p":"…"}.
    on_signal(p, text);
    return;
  }
  if (options_.scenario == Scenario::tracker) {
    on_tracker_message(p, text);
    return;
  }
  std::string_view type = string_field(text, R"("type":")");
  if (type == "signal") {
    on_signal(p, text);
  } else if (type == "peers") {
    if (p.phase == PeerPhase::joining) on_first_peers(p);
  } else if (type == "joined" || type == "pong" || type == "left" || type == "policy") {
    // Nothing to measure.
  } else if (type == "error") {
    on_sdk_error(p, text);
  } else if (type == "reconnect") {
    report_.reconnects++;
  } else {
    report_.errors.add(ErrorKind::protocol, fmt::format("unexpected message type '{}'", type.substr(0, 32)));
  }
}

void LoadClient::on_first_peers(Peer& p) {
  const uint64_t now = monotonic_ns();
  if (p.churning) {
    // soak: back in; the pair sends again once both sides are.
    p.churning = false;
    p.phase = PeerPhase::joined;
    reactor_.cancel_timer(p.socket);
    progress_.rejoins.add();
    const Peer& other = peers_[p.partner];
    if (!other.churning && other.phase == PeerPhase::joined && !pairs_[p.pair].failed) pairs_[p.pair].started = true;
    return;
  }
  report_.connect_to_peers.record(now - p.connect_ns);
  report_.join_to_peers.record(now - p.join_sent_ns);
  report_.last_join_ns = std::max(report_.last_join_ns, now);
  p.phase = PeerPhase::joined;
  reactor_.cancel_timer(p.socket);
  resolve(p, true);
}

// A scenario without `join` (echo, tracker): the upgrade is what a join is
// elsewhere, for the connect-to-peers figure and the end of the ramp.
void LoadClient::mark_ready_without_join(Peer& p) {
  const uint64_t now = monotonic_ns();
  report_.connect_to_peers.record(now - p.connect_ns);
  report_.last_join_ns = std::max(report_.last_join_ns, now);
  p.phase = PeerPhase::joined;
  reactor_.cancel_timer(p.socket);
  resolve(p, true);
}

// echo: the connection is ready once upgraded (there is no join); it starts
// its window of messages at once, as a relay pair does when both peers joined.
void LoadClient::on_echo_open(Peer& p) {
  mark_ready_without_join(p);
  if (options_.message_rate > 0 || !sending_allowed()) return;
  for (uint32_t i = 0; i < options_.window; ++i)
    if (!send_echo(p)) return;
}

// handshake: one cycle is done (TLS established, or the 101 with --upgrade).
// The slot closes as a finished client does (WebSocket close 1000 if upgraded,
// close_notify, FIN) and on_released opens its next connection, so each slot
// has at most one connection, closing or not, at any time.
void LoadClient::on_handshake_done(Peer& p) {
  const uint64_t now = monotonic_ns();
  reactor_.cancel_timer(p.socket);
  progress_.handshakes.add();
  report_.handshakes++;
  if (measuring(now)) {
    report_.handshake.record(now - p.connect_ns);
    report_.handshakes_in_window++;
  }
  resolve(p, true);  // the slot's first outcome counts towards the end of the ramp
  if (p.websocket_open) {
    close_peer(p);
    return;
  }
  p.transport.send_close_notify();
  p.phase = PeerPhase::closing;
  reactor_.close(p.socket, CloseMode::graceful);
}

// tracker: the connection is ready once upgraded; its loop starts with an
// announce when the measured window does (tick).
void LoadClient::on_tracker_open(Peer& p) { mark_ready_without_join(p); }

// Every message read counts (announce replies, relayed offers and answers,
// failures), as in aquatic_ws's load test. An offer read is answered at once;
// the next announce goes when the last one's reply (or failure) is read, so
// each connection keeps one announce in flight (docs/benchmarks.md, "Tracker").
void LoadClient::on_tracker_message(Peer& p, std::string_view text) {
  const uint64_t now = monotonic_ns();
  progress_.signals_received.add();
  report_.signals_received++;
  if (measuring(now)) {
    report_.relay.record(now > p.join_sent_ns ? now - p.join_sent_ns : 0);
    report_.signals_in_window++;
  }
  std::string_view failure = string_field(text, R"("failure reason":")");
  if (!failure.empty()) report_.errors.add(ErrorKind::sdk_error, failure.substr(0, 64));
  if (!sending_allowed()) return;
  if (failure.empty() && text.find(R"("offer":)") != std::string_view::npos) {
    std::string_view from = string_field(text, R"("peer_id":")");
    std::string_view offer_id = string_field(text, R"("offer_id":")");
    if (from.size() == 20 && offer_id.size() == 20) send_tracker_answer(p, from, offer_id);
    else report_.errors.add(ErrorKind::protocol, "offer without a 20-character peer_id and offer_id");
    return;
  }
  if (failure.empty() && text.find(R"("answer":)") != std::string_view::npos) return;
  // An announce reply, or a failure (of an announce, or of an answer).
  if (p.announces_in_flight > 0) p.announces_in_flight--;
  if (p.announces_in_flight == 0) send_tracker_announce(p);
}

void LoadClient::on_signal(Peer& p, std::string_view text) {
  const uint64_t now = monotonic_ns();
  progress_.signals_received.add();
  report_.signals_received++;
  std::string_view body =
      options_.scenario == Scenario::echo ? text : text.substr(std::min(text.find(R"("data":)"), text.size()));
  std::string_view stamp = string_field(body, R"("t":")");
  uint64_t sent_offset = 0;
  auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), sent_offset);
  if (stamp.empty() || ec != std::errc{} || end != stamp.data() + stamp.size()) {
    report_.errors.add(ErrorKind::protocol, "signal without a send timestamp");
    return;
  }
  const uint64_t sent = run_.start_ns + sent_offset;
  if (measuring(now)) {
    report_.relay.record(now > sent ? now - sent : 0);
    report_.signals_in_window++;
  }
  if (options_.scenario == Scenario::echo) {
    // Closed loop: each return sends the next message on the same connection.
    if (options_.message_rate == 0 && sending_allowed()) send_echo(p);
    return;
  }
  if (p.pair == UINT32_MAX) return;
  Pair& pair = pairs_[p.pair];
  pair.confirmed = true;
  // Closed loop: every arrival sends the next signal back, so the pair keeps
  // `window` signals in flight.
  if (options_.message_rate == 0 && !pair.failed && sending_allowed()) send_signal(p, peers_[p.partner]);
}

void LoadClient::on_sdk_error(Peer& p, std::string_view text) {
  std::string_view code = string_field(text, R"("code":")");
  if (code.empty()) code = "(no code)";
  if (p.phase == PeerPhase::joining) {
    fail(p, ErrorKind::sdk_error, code);
    return;
  }
  if (code == "peer-not-found" && p.pair != UINT32_MAX && !pairs_[p.pair].confirmed && !pairs_[p.pair].failed) {
    // The partner may not be visible yet (another edge): retry, not an error.
    report_.warmup_retries++;
    if (options_.message_rate == 0 && sending_allowed()) {
      if (p.retries_pending++ == 0) reactor_.arm_timer(p.socket, reactor_.now_ms() + warmup_retry_ms);
    }
    return;
  }
  report_.errors.add(ErrorKind::sdk_error, code);
}

void LoadClient::on_timer(SocketHandle socket) {
  Peer* p = peer_of(socket);
  if (p == nullptr) return;
  switch (p->phase) {
    case PeerPhase::connecting:
    case PeerPhase::tls:
    case PeerPhase::upgrade:
    case PeerPhase::joining: {
      static constexpr std::string_view names[] = {"idle", "connect", "tls handshake", "upgrade", "join"};
      fail(*p, ErrorKind::timeout, names[static_cast<int>(p->phase)]);
      return;
    }
    case PeerPhase::joined: {
      uint32_t retries = p->retries_pending;
      p->retries_pending = 0;
      if (p->pair == UINT32_MAX || pairs_[p->pair].failed || !sending_allowed()) return;
      for (uint32_t i = 0; i < retries; ++i)
        if (!send_signal(*p, peers_[p->partner])) return;
      return;
    }
    default:
      return;
  }
}

void LoadClient::on_peer_closed(SocketHandle socket, int error) {
  Peer* p = peer_of(socket);
  if (p == nullptr) return;
  if (p->phase == PeerPhase::closing || p->phase == PeerPhase::gone || closing_) {
    reactor_.close(socket, CloseMode::abort);
    return;
  }
  std::string key = error == 0 ? std::string(p->websocket_open ? "eof without close frame" : "eof during handshake")
                               : std::string(errno_name(-error));
  fail(*p, p->websocket_open ? ErrorKind::close : ErrorKind::connect, key);
}

void LoadClient::on_released(SocketHandle socket) {
  Peer* p = peer_of(socket);
  if (p == nullptr) return;
  if (p->churning && rejoin(*p)) return;
  if (p->phase != PeerPhase::closing && p->phase != PeerPhase::gone && !closing_) {
    report_.errors.add(ErrorKind::connect, "socket released unexpectedly");
  }
  if (!closing_) lose(*p);
  else if (p->websocket_open) {
    p->websocket_open = false;
    progress_.open_websockets.sub();
  }
  p->socket = SocketHandle{};
  p->transport.reset();
  p->head.clear(reactor_.pool());
  p->messages.release(reactor_.pool());
  p->messages.halt();
  p->phase = PeerPhase::gone;
  // handshake: the closed loop. A failed cycle is retried too (its error is
  // counted); the loop stops with the measured window.
  if (options_.scenario == Scenario::handshake && sending_allowed())
    open_peer(static_cast<uint32_t>(p - peers_.get()));
}

// ---- sending ----

bool LoadClient::send_join(Peer& p) {
  char json[512];
  auto r = fmt::format_to_n(json, sizeof json,
                            R"({{"type":"join","streamId":"{}-s{}","rendition":"r{}","peerId":"{}","id":1}})",
                            run_.run_id, p.stream, p.rendition, p.id());
  p.join_sent_ns = monotonic_ns();
  return send_frame(p, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(json), std::min(r.size, sizeof json)});
}

// 20 ASCII characters each: the run's id, then the swarm's or connection's
// index (an info_hash as p2p-media-loader's, a peer_id as the JavaScript clients').
void LoadClient::tracker_ids(const Peer& p, char (&info_hash)[21], char (&peer_id)[21]) const {
  std::string_view run = std::string_view(run_.run_id).substr(0, 8);
  fmt::format_to_n(info_hash, 21, "{:>8}h{:011}", run, p.info_hash);
  fmt::format_to_n(peer_id, 21, "{:>8}p{:011}", run, p.global_index);
  info_hash[20] = peer_id[20] = '\0';
}

bool LoadClient::send_tracker_announce(Peer& p) {
  char info_hash[21], peer_id[21];
  tracker_ids(p, info_hash, peer_id);
  char* out = json_scratch_.data();
  const size_t cap = json_scratch_.size();
  auto r = fmt::format_to_n(out, cap, R"({{"action":"announce","info_hash":"{}","peer_id":"{}","numwant":{},"offers":[)",
                            std::string_view(info_hash, 20), std::string_view(peer_id, 20), tracker_offers);
  size_t n = r.size;
  for (uint32_t i = 0; i < tracker_offers && n < cap; ++i) {
    const uint64_t id = ++tracker_offers_made_;
    auto o = fmt::format_to_n(out + n, cap - n, R"({}{{"offer":{{"type":"offer","sdp":"{}"}},"offer_id":"o{:03}{:016}"}})",
                              i == 0 ? "" : ",", tracker_sdp, shard_.id() % 1000, id);
    n += o.size;
  }
  if (n + 2 > cap) return false;
  out[n++] = ']';
  out[n++] = '}';
  p.join_sent_ns = monotonic_ns();
  p.announces_in_flight++;
  if (!send_frame(p, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(out), n})) return false;
  progress_.signals_sent.add();
  return true;
}

bool LoadClient::send_tracker_answer(Peer& p, std::string_view to_peer_id, std::string_view offer_id) {
  char info_hash[21], peer_id[21];
  tracker_ids(p, info_hash, peer_id);
  auto r = fmt::format_to_n(
      json_scratch_.data(), json_scratch_.size(),
      R"({{"action":"announce","info_hash":"{}","peer_id":"{}","to_peer_id":"{}","offer_id":"{}","answer":{{"type":"answer","sdp":"{}"}}}})",
      std::string_view(info_hash, 20), std::string_view(peer_id, 20), to_peer_id, offer_id, tracker_sdp);
  if (r.size > json_scratch_.size()) return false;
  p.join_sent_ns = monotonic_ns();
  if (!send_frame(p, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(json_scratch_.data()), r.size})) return false;
  progress_.signals_sent.add();
  return true;
}

bool LoadClient::send_echo(Peer& p) {
  // The same body as a signal's data (send_signal), alone: exactly --size bytes.
  const uint64_t offset = monotonic_ns() - run_.start_ns;
  auto r = fmt::format_to_n(json_scratch_.data(), json_scratch_.size(), R"({{"t":"{:016}","p":"{}"}})", offset,
                            padding_);
  if (r.size > json_scratch_.size()) return false;
  if (!send_frame(p, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(json_scratch_.data()), r.size})) return false;
  progress_.signals_sent.add();
  return true;
}

bool LoadClient::send_signal(Peer& from, const Peer& to) {
  // data = {"t":"<16-digit ns since run start>","p":"<padding>"}: exactly
  // --size bytes (at least 31), a string so its width never varies.
  const uint64_t offset = monotonic_ns() - run_.start_ns;
  auto r = fmt::format_to_n(json_scratch_.data(), json_scratch_.size(),
                            R"({{"type":"signal","to":"{}","kind":"offer","data":{{"t":"{:016}","p":"{}"}}}})", to.id(),
                            offset, padding_);
  if (r.size > json_scratch_.size()) return false;
  if (!send_frame(from, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(json_scratch_.data()), r.size})) return false;
  progress_.signals_sent.add();
  return true;
}

bool LoadClient::send_frame(Peer& p, ws::Opcode opcode, std::span<const uint8_t> payload) {
  uint8_t key[4];
  uint32_t random = static_cast<uint32_t>(next_random(random_state_));
  std::memcpy(key, &random, 4);
  auto sent = p.messages.send(p.transport, opcode, payload, *workspace_, key);
  if (!sent) {
    fail(p, ErrorKind::protocol,
         sent.error().reason == ws::frame_too_large ? "frame larger than the scratch buffer"
                                                    : "send queue full (server not reading)");
    return false;
  }
  return true;
}

bool LoadClient::write(Peer& p, std::span<const uint8_t> bytes) {
  if (!p.socket.valid()) return false;
  return p.transport.write(bytes).has_value();
}

void LoadClient::open_loop_sends(uint64_t now) {
  if (options_.scenario == Scenario::echo) {
    open_loop_echoes(now);
    return;
  }
  if (pairs_.empty()) return;
  if (open_loop_start_ns_ == 0) open_loop_start_ns_ = now;
  const double per_shard = options_.message_rate / shard_.count();
  const uint64_t due = static_cast<uint64_t>(per_shard * static_cast<double>(now - open_loop_start_ns_) / 1e9);
  uint32_t budget = 100000;  // bounds one tick's burst after a stall
  while (open_loop_sent_ < due && budget-- > 0) {
    // Next started pair, round robin; give up this tick if none is live.
    uint32_t scanned = 0;
    while (scanned < pairs_.size() && (!pairs_[open_loop_cursor_].started || pairs_[open_loop_cursor_].failed)) {
      open_loop_cursor_ = (open_loop_cursor_ + 1) % pairs_.size();
      ++scanned;
    }
    if (scanned == pairs_.size()) {
      open_loop_sent_ = due;
      return;
    }
    Pair& pair = pairs_[open_loop_cursor_];
    open_loop_cursor_ = (open_loop_cursor_ + 1) % pairs_.size();
    uint32_t from = pair.first + (pair.next_from_second ? 1 : 0);
    pair.next_from_second = !pair.next_from_second;
    send_signal(peers_[from], peers_[from ^ 1u]);
    ++open_loop_sent_;
  }
}

void LoadClient::open_loop_echoes(uint64_t now) {
  if (peer_count_ == 0) return;
  if (open_loop_start_ns_ == 0) open_loop_start_ns_ = now;
  const double per_shard = options_.message_rate / shard_.count();
  const uint64_t due = static_cast<uint64_t>(per_shard * static_cast<double>(now - open_loop_start_ns_) / 1e9);
  uint32_t budget = 100000;  // bounds one tick's burst after a stall
  while (open_loop_sent_ < due && budget-- > 0) {
    // Next open connection, round robin; give up this tick if none is.
    uint32_t scanned = 0;
    while (scanned < peer_count_ && peers_[open_loop_cursor_].phase != PeerPhase::joined) {
      open_loop_cursor_ = (open_loop_cursor_ + 1) % peer_count_;
      ++scanned;
    }
    if (scanned == peer_count_) {
      open_loop_sent_ = due;
      return;
    }
    Peer& p = peers_[open_loop_cursor_];
    open_loop_cursor_ = (open_loop_cursor_ + 1) % peer_count_;
    send_echo(p);
    ++open_loop_sent_;
  }
}

// soak: every 1/churn_rate s (over all shards) the next sending pair leaves
// (both peers close with 1000, as a viewer who stops watching) and joins
// again under the same peerIds as soon as the sockets are released.
void LoadClient::churn(uint64_t now) {
  if (options_.churn_rate <= 0 || pairs_.empty()) return;
  const uint64_t start = run_.measure_start_ns.load(std::memory_order_relaxed);
  if (start == 0 || now < start) return;
  const double per_shard = options_.churn_rate / shard_.count();
  const uint64_t due = static_cast<uint64_t>(per_shard * static_cast<double>(now - start) / 1e9);
  uint32_t budget = 10000;
  while (churned_ < due && budget-- > 0) {
    uint32_t scanned = 0;
    while (scanned < pairs_.size() && (!pairs_[churn_cursor_].started || pairs_[churn_cursor_].failed)) {
      churn_cursor_ = (churn_cursor_ + 1) % pairs_.size();
      ++scanned;
    }
    if (scanned == pairs_.size()) {  // every pair is already churning
      churned_ = due;
      return;
    }
    Pair& pair = pairs_[churn_cursor_];
    churn_cursor_ = (churn_cursor_ + 1) % pairs_.size();
    pair.started = false;  // the open loop skips it until both sides are back
    for (uint32_t side = 0; side < 2; ++side) {
      Peer& p = peers_[pair.first + side];
      p.churning = true;
      close_peer(p);
    }
    ++churned_;
  }
}

bool LoadClient::rejoin(Peer& p) {
  if (closing_ || !sending_allowed()) {
    p.churning = false;
    return false;  // the run is ending: released as any other peer
  }
  if (p.websocket_open) {
    p.websocket_open = false;
    progress_.open_websockets.sub();
  }
  p.socket = SocketHandle{};
  p.transport.reset();
  p.head.clear(reactor_.pool());
  p.messages.release(reactor_.pool());
  p.messages.halt();
  p.phase = PeerPhase::gone;
  open_peer(static_cast<uint32_t>(&p - peers_.get()));
  if (p.phase == PeerPhase::gone) {  // could not even open a socket
    p.churning = false;
    lose(p);
  }
  return true;
}

void LoadClient::sample_soak(uint64_t now) {
  if (now < next_sample_ns_) return;
  const uint64_t start = run_.measure_start_ns.load(std::memory_order_relaxed);
  if (start == 0) return;
  next_sample_ns_ = now + static_cast<uint64_t>(options_.sample_every_s * 1e9);
  SoakSample s;
  s.at_s = static_cast<double>(now - start) / 1e9;
  if (options_.pid != 0) {
    s.rss_kb = read_vm_rss_kb(options_.pid).value_or(0);
    s.descriptors = count_descriptors(options_.pid).value_or(0);
  }
  for (uint32_t i = 0; i < shard_.count(); ++i) {
    s.open += run_.progress[i].open_websockets.get();
    s.rejoins += run_.progress[i].rejoins.get();
    s.signals_received += run_.progress[i].signals_received.get();
  }
  run_.soak_samples.push_back(s);
  if (options_.progress) print_progress();
}

void LoadClient::start_pair(Pair& pair) {
  pair.started = true;
  progress_.pairs_started.add();
  if (options_.message_rate > 0 || !sending_allowed()) return;
  for (uint32_t i = 0; i < options_.window; ++i)
    if (!send_signal(peers_[pair.first], peers_[pair.first + 1])) return;
}

bool LoadClient::sending_allowed() const {
  if (closing_) return false;
  RunPhase phase = run_.phase.load(std::memory_order_relaxed);
  return phase == RunPhase::ramp || phase == RunPhase::measure;
}

bool LoadClient::measuring(uint64_t now) const {
  uint64_t start = run_.measure_start_ns.load(std::memory_order_relaxed);
  if (start == 0 || now < start) return false;
  uint64_t end = run_.measure_end_ns.load(std::memory_order_relaxed);
  return end == 0 || now < end;
}

// ---- outcomes ----

void LoadClient::fail(Peer& p, ErrorKind kind, std::string_view key) {
  if (p.phase == PeerPhase::closing || p.phase == PeerPhase::gone) return;
  p.churning = false;  // a failed rejoin is lost like any failed peer
  if (!closing_) report_.errors.add(kind, key);
  lose(p);
  p.phase = PeerPhase::closing;
  p.messages.halt();
  if (p.socket.valid()) reactor_.close(p.socket, CloseMode::abort);
}

void LoadClient::resolve(Peer& p, bool joined) {
  if (p.resolved) return;
  p.resolved = true;
  if (joined) {
    progress_.joined.add();
    report_.joined++;
  } else {
    progress_.failed.add();
    report_.failed++;
  }
  if (p.pair == UINT32_MAX) {
    ++units_resolved_;
  } else {
    Pair& pair = pairs_[p.pair];
    if (!pair.started && !pair.failed) {
      if (!joined) {
        pair.failed = true;
        ++units_resolved_;
      } else {
        const Peer& other = peers_[p.partner];
        if (other.resolved && other.phase == PeerPhase::joined) {
          ++units_resolved_;
          start_pair(pair);
        }
      }
    }
  }
  update_units_resolved();
}

void LoadClient::lose(Peer& p) {
  if (p.websocket_open) {
    p.websocket_open = false;
    progress_.open_websockets.sub();
  }
  if (!p.resolved) {
    if (!closing_) resolve(p, false);
    return;
  }
  if (p.pair == UINT32_MAX) return;
  Pair& pair = pairs_[p.pair];
  if (pair.failed) return;
  if (!pair.started) {
    ++units_resolved_;
    update_units_resolved();
  }
  pair.failed = true;
}

void LoadClient::close_peer(Peer& p) {
  if (!p.socket.valid() || p.phase == PeerPhase::gone) return;
  if (p.phase == PeerPhase::closing) {
    reactor_.close(p.socket, CloseMode::abort);
    return;
  }
  if (p.websocket_open) {
    uint8_t payload[125];
    size_t n = ws::encode_close_payload(payload, ws::close_code::normal, "load run over");
    send_frame(p, ws::Opcode::close, {payload, n});
    if (p.phase == PeerPhase::closing) return;  // send_frame failed and aborted it
    p.transport.send_close_notify();
    p.phase = PeerPhase::closing;
    p.messages.halt();
    reactor_.close(p.socket, CloseMode::graceful);
    return;
  }
  p.phase = PeerPhase::closing;
  reactor_.close(p.socket, CloseMode::abort);
}

void LoadClient::close_all() {
  if (closing_) return;
  closing_ = true;
  close_deadline_ms_ = reactor_.now_ms() + close_grace_ms;
  for (uint32_t i = 0; i < peer_count_; ++i) close_peer(peers_[i]);
}

void LoadClient::on_stop_requested() { close_all(); }

bool LoadClient::stopped() const {
  return closing_ && (reactor_.live_sockets() == 0 || reactor_.now_ms() >= close_deadline_ms_ + 2000);
}

}  // namespace mf::perf
