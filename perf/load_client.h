#pragma once
// The per-shard engine of mf-load: one LoadClient per client shard opens its
// share of outbound connections (Reactor::connect_adopted, bound to cycling
// 127.0.0.X source addresses), drives each through TLS (optional), the HTTP
// upgrade and WebSocket framing as a client (every frame masked), speaks the
// SDK messages of a scenario and measures. Shards share nothing but the
// read-mostly LoadRun: counters each shard alone writes (relaxed atomics, so
// shard 0 can print progress and decide phase changes) and the phase word
// shard 0 alone writes. Histograms and error counts stay per shard and are
// handed over in the shard's ShardReport when it stops.
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/runtime/reactor.h"
#include "common/base/slot_array.h"
#include "common/runtime/shard_group.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_session.h"
#include "common/tls/transport_stream.h"
#include "common/codec/websocket_codec.h"
#include "common/http/websocket_message_stream.h"
#include "perf/latency_histogram.h"

namespace mf::perf {

// echo is for mf-echo (perf/echo_server.cc), not an edge: every connection
// keeps --window messages of --size bytes in flight and times their return.
// handshake measures connection set-up through a TLS terminator (edge,
// ingress or another proxy): every connection repeats connect, a full TLS
// handshake (optionally the upgrade), close, in a closed loop.
// tracker speaks the WebTorrent tracker protocol (docs/tracker.md) on the
// URL's path, as aquatic_ws's load test does: each connection is a closed
// loop of one request, one message read (docs/benchmarks.md, "Tracker").
enum class Scenario : uint8_t { join, idle, relay, cross, echo, handshake, soak, tracker };
std::string_view scenario_name(Scenario scenario);

// One --url: ws[s]://HOST[:PORT]/PATH[?QUERY] with HOST on loopback.
struct TargetUrl {
  bool tls = false;
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::string host_header;  // HOST[:PORT] as written (Host header)
  std::string host;         // SNI / certificate name (IP literals are not sent as SNI)
  std::string target;       // path and query as written
  std::string text;         // the URL, for reports
};

// Parses a URL; refuses anything that is not ws:// or wss:// to 127.0.0.0/8,
// ::1 or localhost. The error is one line.
std::expected<TargetUrl, std::string> parse_target_url(std::string_view url);

struct LoadOptions {
  Scenario scenario = Scenario::join;
  std::vector<TargetUrl> urls;
  uint32_t connections = 100;
  double duration_s = 10;
  double connect_rate = 1000;     // connections opened per second (ramp)
  double message_rate = 0;        // relay/cross/echo: messages per second in total; 0 = closed loop
  uint32_t window = 1;            // closed loop: signals in flight per pair (relay/cross), per connection (echo)
  uint32_t size = 64;             // relay/cross: bytes of each signal's `data`; echo: of each message
  uint32_t streams = 1;
  uint32_t renditions = 1;
  uint32_t shards = 1;
  uint32_t source_addresses = 16; // 127.0.0.2 .. 127.0.0.(K+1)
  uint32_t handshake_timeout_ms = 10000;  // connect start to first `peers`
  bool upgrade = false;           // handshake: also do the WebSocket upgrade (to the 101)
  bool insecure = false;          // wss: do not verify the server certificate
  std::string ca_file;            // wss: trust these instead of the system store
  int pid = 0;                    // server process whose VmRSS is sampled; 0 = none
  std::vector<int> cpu_pids;      // processes whose CPU time (every thread) is read at the window's ends
  double churn_rate = 0;          // soak: pairs per second that leave (close) and join again
  double sample_every_s = 5;      // soak: the server's VmRSS and descriptors sampled this often
  bool json = false;
  bool progress = false;          // live line on stderr (set when stderr is a TTY)
};

// What can go wrong, by kind; the key names the detail (errno name, HTTP
// status, close code, SDK error code, reason).
enum class ErrorKind : uint8_t { connect, tls, upgrade, protocol, timeout, sdk_error, close };
std::string_view error_kind_name(ErrorKind kind);

struct ErrorCounts {
  std::map<std::pair<ErrorKind, std::string>, uint64_t> counts;
  void add(ErrorKind kind, std::string_view key, uint64_t n = 1);
  void merge(const ErrorCounts& other);
  uint64_t total() const;
};

// A counter one shard writes and others read: load + store, no locked
// instruction on the writer's path.
class ShardCounter {
 public:
  void add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct alignas(64) ShardProgress {
  ShardCounter connects_started, connected, joined, failed, open_websockets;
  ShardCounter signals_sent, signals_received, pairs_started;
  ShardCounter handshakes;  // handshake scenario: cycles completed
  ShardCounter rejoins;     // soak: churned peers joined again
  std::atomic<bool> units_resolved{false};  // every unit opened and joined (or failed)
};

// Handed over by each shard when it stops (written on its thread before the
// thread ends; read by main after ShardGroup::run returns).
struct ShardReport {
  LatencyHistogram connect_to_peers;  // connect start -> first `peers`
  LatencyHistogram join_to_peers;     // `join` sent -> first `peers`
  LatencyHistogram relay;             // signal send timestamp -> received, in the window
  LatencyHistogram handshake;         // handshake: connect start -> TLS done (or 101), in the window
  ErrorCounts errors;
  uint64_t connects_started = 0, joined = 0, failed = 0;
  uint64_t signals_sent = 0, signals_received = 0, signals_in_window = 0;
  uint64_t pings_answered = 0, reconnects = 0, warmup_retries = 0;
  uint64_t handshakes = 0, handshakes_in_window = 0;
  uint64_t first_connect_ns = 0, last_join_ns = 0;
};

enum class RunPhase : uint32_t {
  ramp,      // connections opening; relay pairs start as both peers join
  measure,   // the measured window (idle, relay, cross, handshake)
  drain,     // no new signals; in-flight ones may still arrive
  closing,   // every shard closes its connections
};

// A process's CPU time in clock ticks: in user space (utime) and in the
// kernel on its behalf (stime), as /proc/PID/stat counts them.
struct CpuTicks {
  uint64_t user = 0;
  uint64_t system = 0;
};

// soak: one sample of the server (--pid) and of the run, taken by shard 0.
struct SoakSample {
  double at_s = 0;          // since the measured window started
  uint64_t rss_kb = 0;      // 0: unreadable
  uint64_t descriptors = 0; // entries of /proc/PID/fd
  uint64_t open = 0;        // open WebSockets of the run
  uint64_t rejoins = 0;     // churned peers joined again, so far
  uint64_t signals_received = 0;
};

// Shared by all shards of one run.
struct LoadRun {
  LoadOptions options;
  std::string run_id;          // random hex, prefixes peerIds and streamIds
  uint64_t start_ns = 0;       // CLOCK_MONOTONIC when the run started
  uint64_t ramp_deadline_ns = 0;
  uint64_t hard_deadline_ns = 0;
  ShardGroup* group = nullptr;
  std::unique_ptr<ShardProgress[]> progress;
  std::vector<ShardReport> reports;  // [shard]
  std::atomic<RunPhase> phase{RunPhase::ramp};
  std::atomic<uint64_t> measure_start_ns{0};
  std::atomic<uint64_t> measure_end_ns{0};
  std::atomic<uint64_t> open_at_measure_end{0};
  std::atomic<uint64_t> rss_start_kb{0};
  std::atomic<uint64_t> rss_end_kb{0};
  std::atomic<bool> hit_hard_deadline{false};
  // CPU ticks (utime and stime, every thread) of each options.cpu_pids entry
  // at the start and at the end of the measured window; written by shard 0
  // only, read after the run. nullopt: unreadable.
  std::vector<std::optional<CpuTicks>> cpu_start_ticks, cpu_end_ticks;
  // TCP segments sent by this network namespace (both ends of a loopback
  // run) at the start and at the end of the measured window; written by
  // shard 0 only. nullopt: unreadable.
  std::optional<uint64_t> tcp_segments_start, tcp_segments_end;
  std::vector<SoakSample> soak_samples;  // written by shard 0 only; read after the run
};

// CLOCK_MONOTONIC in nanoseconds (all shards and the signal timestamps use it).
uint64_t monotonic_ns();
// VmRSS of `pid` in KiB, from /proc/PID/status; nullopt when unreadable.
std::optional<uint64_t> read_vm_rss_kb(int pid);
// utime and stime of `pid` (all its threads, live and exited) in clock
// ticks, from /proc/PID/stat; nullopt when unreadable.
std::optional<CpuTicks> read_cpu_ticks(int pid);
// TCP segments sent so far in this network namespace (OutSegs of the Tcp
// line of /proc/net/snmp); nullopt when unreadable.
std::optional<uint64_t> read_tcp_out_segments();
// Entries of /proc/PID/fd (open descriptors); nullopt when unreadable.
std::optional<uint64_t> count_descriptors(int pid);

class LoadClient final : public ShardService, public SocketService {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, LoadRun& run);
  LoadClient(Shard& shard, LoadRun& run);
  ~LoadClient() override;

  // ShardService
  void on_stop_requested() override;
  bool stopped() const override;

  // SocketService
  void on_accepted(SocketHandle, const sockaddr_storage*) override {}
  void on_received(SocketHandle socket, std::span<uint8_t> bytes) override;
  void on_peer_closed(SocketHandle socket, int error) override;
  void on_timer(SocketHandle socket) override;
  void on_connected(SocketHandle socket, int error) override;
  void on_released(SocketHandle socket) override;

 private:
  enum class PeerPhase : uint8_t { idle, connecting, tls, upgrade, joining, joined, closing, gone };
  struct Peer {
    SocketHandle socket;
    TransportStream transport;  // plain (ws://) or TLS (wss://)
    ws::MessageStream messages;
    ByteQueue head;       // HTTP response head split across reads (common/http/head_accumulator.h)
    uint64_t connect_ns = 0;
    uint64_t join_sent_ns = 0;
    uint32_t global_index = 0;
    uint32_t url_index = 0;
    uint32_t stream = 0;
    uint32_t rendition = 0;
    uint32_t pair = UINT32_MAX;     // local pair index (relay, cross)
    uint32_t partner = UINT32_MAX;  // local peer index of the other side
    uint32_t retries_pending = 0;   // signals refused with peer-not-found before the pair was confirmed
    uint32_t announces_in_flight = 0;  // tracker: announces sent whose reply (or failure) is not read yet
    uint32_t cycles = 0;            // handshake: connections this slot has opened (spreads source addresses)
    uint32_t info_hash = 0;         // tracker: the swarm (index) this connection announces on
    std::array<char, 24> key{};
    PeerPhase phase = PeerPhase::idle;
    bool resolved = false;          // counted as joined or failed
    bool websocket_open = false;    // counted in open_websockets
    bool churning = false;          // soak: closed on purpose, joins again once released
    uint8_t peer_id_length = 0;
    char peer_id[48] = {};
    std::string_view id() const { return {peer_id, peer_id_length}; }
  };
  struct Pair {
    uint32_t first = 0;  // local peer indexes
    bool started = false;
    bool confirmed = false;  // a signal got through
    bool failed = false;
    bool next_from_second = false;  // open loop: alternate direction
  };
  struct FrameHandler;

  void tick();
  void coordinate();  // shard 0 only
  void sample_cpu(std::vector<std::optional<CpuTicks>>& ticks);  // shard 0: options_.cpu_pids' CPU ticks now
  void print_progress();
  void open_unit(uint32_t unit);
  void open_peer(uint32_t peer_index);
  Peer* peer_of(SocketHandle socket);
  void on_transport_bytes(Peer& p, std::span<uint8_t> bytes);
  void on_plaintext(Peer& p, std::span<uint8_t> bytes);
  void on_head_bytes(Peer& p, std::span<uint8_t> bytes);
  void on_sdk_message(Peer& p, std::string_view text);
  void on_signal(Peer& p, std::string_view text);
  void on_sdk_error(Peer& p, std::string_view text);
  void on_first_peers(Peer& p);
  void mark_ready_without_join(Peer& p);
  void on_echo_open(Peer& p);
  void on_handshake_done(Peer& p);
  void on_tracker_open(Peer& p);
  void on_tracker_message(Peer& p, std::string_view text);
  bool send_tracker_announce(Peer& p);
  bool send_tracker_answer(Peer& p, std::string_view to_peer_id, std::string_view offer_id);
  void tracker_ids(const Peer& p, char (&info_hash)[21], char (&peer_id)[21]) const;
  void start_pair(Pair& pair);
  void send_upgrade_request(Peer& p);
  bool send_join(Peer& p);
  bool send_signal(Peer& from, const Peer& to);
  bool send_echo(Peer& p);
  bool send_frame(Peer& p, ws::Opcode opcode, std::span<const uint8_t> payload);
  bool write(Peer& p, std::span<const uint8_t> bytes);
  void fail(Peer& p, ErrorKind kind, std::string_view key);
  void resolve(Peer& p, bool joined);
  void lose(Peer& p);  // a peer that stops taking part (closed or failed)
  void close_peer(Peer& p);
  void close_all();
  bool sending_allowed() const;
  bool measuring(uint64_t now_ns) const;
  void update_units_resolved();
  void open_loop_sends(uint64_t now_ns);
  void open_loop_echoes(uint64_t now_ns);
  void churn(uint64_t now_ns);       // soak
  void sample_soak(uint64_t now_ns); // soak, shard 0
  bool rejoin(Peer& p);              // soak: on_released of a churned peer
  void finish_report();

  Shard& shard_;
  Reactor& reactor_;
  LoadRun& run_;
  const LoadOptions& options_;
  ShardProgress& progress_;
  ShardReport report_;
  std::optional<tls::Context> tls_context_;
  ws::DecoderConfig decoder_config_;
  std::unique_ptr<Peer[]> peers_;
  uint32_t peer_count_ = 0;
  std::vector<Pair> pairs_;
  uint32_t unit_count_ = 0;  // peers (join, idle) or pairs (relay, cross)
  uint32_t units_opened_ = 0;
  uint32_t units_resolved_ = 0;
  double units_per_second_ = 0;
  uint64_t ramp_start_ns_ = 0;
  bool ramp_stopped_ = false;   // join: no new connections after the duration
  uint64_t drain_until_ns_ = 0; // shard 0: end of the drain phase
  SlotArray<uint32_t> peer_by_slot_;
  std::vector<uint8_t> plaintext_scratch_;
  std::optional<ws::MessageWorkspace> workspace_;  // sized once the options are known
  std::vector<char> json_scratch_;
  std::string padding_;
  uint64_t random_state_;
  uint64_t tracker_offers_made_ = 0;  // tracker: offer_ids are unique per shard
  bool tracker_loops_started_ = false;  // tracker: every open connection sent its first announce
  // open loop
  uint64_t open_loop_start_ns_ = 0;
  uint64_t open_loop_sent_ = 0;
  uint32_t open_loop_cursor_ = 0;
  // soak
  uint64_t churned_ = 0;
  uint32_t churn_cursor_ = 0;
  uint64_t next_sample_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  uint64_t last_progress_received_ = 0;
  bool closing_ = false;
  uint64_t close_deadline_ms_ = 0;
  bool report_written_ = false;
};

}  // namespace mf::perf
