// mf-load: the load generator for mf-edge (and mf-ingress) on loopback.
// Scenarios: join (ramp and join latency), idle (hold joined peers; server
// RSS per peer), relay (signal round trips between pairs on one edge), cross
// (pairs split over two edges), echo (round trips through mf-echo, the raw
// baseline of perf/compare), handshake (closed-loop connect + full TLS
// handshake [+ upgrade] + close: handshakes/s through a TLS terminator).
// Every run stops by itself: after its
// duration, at the latest at a hard deadline 30 s later.
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <thread>

#include "common/net/descriptor_limit.h"
#include "common/runtime/io_uring_ring.h"
#include "common/base/log.h"
#include "common/runtime/shard_group.h"
#include "common/tls/tls_context.h"
#include "perf/latency_histogram.h"
#include "perf/load_client.h"

namespace {

using namespace mf;
using namespace mf::perf;

constexpr std::string_view usage_text = R"(usage: mf-load SCENARIO [options]

Scenarios:
  join    ramp N peers through connect, TLS, upgrade, join, first `peers`;
          reports joins/s and join latency
  idle    hold N joined peers for the duration (answering the edge's pings);
          reports the server's RSS per peer (--pid)
  relay   N/2 pairs in the same stream exchange `signal` messages; closed loop
          (--window per pair) or open loop (--rate signals/s in total);
          reports relayed signals/s and latency percentiles
  cross   as relay, the two peers of a pair on different --url (edges)
  echo    against mf-echo, not an edge: each connection sends messages of
          exactly --size bytes ({"t":…,"p":…}, as a signal's data) and
          times their echo; closed loop (--window per connection) or open
          loop (--rate messages/s in total); reports messages/s and latency
  handshake  N connections in a closed loop, each repeating: TCP connect, a
          full TLS handshake (a fresh session every time, no resumption),
          with --upgrade the WebSocket upgrade up to the 101, then close
          (close frame, close_notify, FIN) and start again, until the
          measured window (--duration, after the first N) ends; reports
          handshakes/s and the latency from connect start to handshake done
          (to the 101 with --upgrade). Needs wss:// (ws:// with --upgrade)
  tracker the WebTorrent tracker protocol on the URL's path (e.g.
          wss://127.0.0.1:8443/announce), as aquatic_ws's load test: each
          connection is a closed loop of one request and one message read;
          the request announces with 10 offers (a 47-character dummy SDP)
          and numwant 10, or answers the message read if it was an offer.
          Each connection keeps one swarm, drawn from a Gamma(0.2, 100)
          distribution over 10,000 info_hashes. Reports every message
          received per second (replies, offers, answers, failures)
  soak    long-running steadiness: relay in open loop (--rate signals/s,
          default 100) while --churn-rate pairs per second leave (close) and
          join again; every --sample-every s it samples the server's VmRSS
          and open descriptors (/proc/PID/fd, needs --pid) and prints the
          series and the growth after the warm-up (the first quarter)

Options (defaults in brackets):
  --url ws[s]://HOST:PORT/PATH  target, loopback only; repeat for several
                           edges (peers are spread round robin)  [ws://127.0.0.1:8445/ws]
  --connections N          connections in total                   [100]
  --duration SECONDS       join: ramp time limit; idle/relay/cross: measured
                           window after the ramp                   [10]
  --rate R                 join/idle: connections opened per second;
                           relay/cross/echo: messages per second in total
                           (open loop; 0 = closed loop)            [1000 / 0]
  --connect-rate R         relay/cross/echo: connections opened per second [1000]
  --window W               closed loop: signals in flight per pair (relay,
                           cross), messages per connection (echo)  [1]
  --size BYTES             relay/cross: bytes of each signal's data; echo:
                           bytes of each message (>= 31)           [64]
  --streams K              streams the peers (pairs) are spread over [1]
  --renditions K           renditions per stream                   [1]
  --shards N               client threads, one io_uring each       [1]
  --source-addresses K     bind to 127.0.0.2 .. 127.0.0.(K+1) in turn (0 = no
                           bind) to pass the ephemeral-port limit  [16]
  --handshake-timeout-ms N connect start to first `peers` (handshake: to
                           TLS done or the 101)                    [10000]
  --upgrade                handshake: also do the WebSocket upgrade [off]
  --insecure               wss: do not verify the server certificate
  --ca FILE                wss: trust the certificates in FILE
  --pid PID                sample the server's VmRSS at start and end
                           (soak: and its descriptors, every --sample-every)
  --cpu-pid PID            read PID's CPU time (utime + stime, all threads)
                           at the start and end of the measured window;
                           repeatable (JSON: serverCpu, per message; user
                           and system apart)
  --churn-rate R           soak: pairs per second that leave and rejoin [10]
  --sample-every SECONDS   soak: sampling period                   [5]
  --json                   print one JSON object on stdout (the text report
                           goes to stderr)
  --help                   this text

Exit status: 0 when something succeeded, 1 when nothing did, 2 for bad options.
)";

struct ParseOutcome {
  bool help = false;
  std::string error;
};

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

ParseOutcome parse_arguments(int argc, char** argv, LoadOptions& o) {
  ParseOutcome outcome;
  bool rate_given = false, connections_given = false, churn_given = false;
  double rate = 0;
  std::vector<std::string> urls;
  bool scenario_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      outcome.help = true;
      return outcome;
    }
    if (!arg.starts_with("--")) {
      if (scenario_given) return {false, fmt::format("unexpected argument '{}'", arg)};
      scenario_given = true;
      if (arg == "join") o.scenario = Scenario::join;
      else if (arg == "idle") o.scenario = Scenario::idle;
      else if (arg == "relay") o.scenario = Scenario::relay;
      else if (arg == "cross") o.scenario = Scenario::cross;
      else if (arg == "echo") o.scenario = Scenario::echo;
      else if (arg == "handshake") o.scenario = Scenario::handshake;
      else if (arg == "soak") o.scenario = Scenario::soak;
      else if (arg == "tracker") o.scenario = Scenario::tracker;
      else return {false, fmt::format("unknown scenario '{}' (join, idle, relay, cross, echo, handshake, soak, tracker)", arg)};
      continue;
    }
    std::string_view flag = arg;
    std::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto is_switch = [&](std::string_view name) { return flag == name; };
    if (is_switch("--insecure") || is_switch("--json") || is_switch("--upgrade")) {
      if (has_value) return {false, fmt::format("{} takes no value", flag)};
      (flag == "--insecure" ? o.insecure : flag == "--json" ? o.json : o.upgrade) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return {false, fmt::format("{} needs a value", flag)};
      value = argv[++i];
    }
    auto bad = [&](std::string_view what) { return ParseOutcome{false, fmt::format("{} {}: {}", flag, value, what)}; };
    auto u32 = [&](uint32_t& out, uint32_t min, uint32_t max) -> bool {
      uint32_t v = 0;
      if (!parse_number(value, v) || v < min || v > max) return false;
      out = v;
      return true;
    };
    auto positive = [&](double& out, bool allow_zero) -> bool {
      double v = 0;
      if (!parse_number(value, v) || !std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) return false;
      out = v;
      return true;
    };
    if (flag == "--url") {
      urls.emplace_back(value);
    } else if (flag == "--connections") {
      if (!u32(o.connections, 1, 10'000'000)) return bad("must be 1..10000000");
      connections_given = true;
    } else if (flag == "--duration") {
      if (!positive(o.duration_s, false) || o.duration_s > 86400) return bad("must be a number of seconds in (0, 86400]");
    } else if (flag == "--rate") {
      if (!positive(rate, true)) return bad("must be a non-negative number");
      rate_given = true;
    } else if (flag == "--connect-rate") {
      if (!positive(o.connect_rate, false)) return bad("must be a positive number");
    } else if (flag == "--window") {
      if (!u32(o.window, 1, 100000)) return bad("must be 1..100000");
    } else if (flag == "--size") {
      if (!u32(o.size, 31, 1 << 20)) return bad("must be 31..1048576 (the timestamp takes 31 bytes)");
    } else if (flag == "--streams") {
      if (!u32(o.streams, 1, 10'000'000)) return bad("must be 1..10000000");
    } else if (flag == "--renditions") {
      if (!u32(o.renditions, 1, 1000)) return bad("must be 1..1000");
    } else if (flag == "--shards") {
      if (!u32(o.shards, 1, 256)) return bad("must be 1..256");
    } else if (flag == "--source-addresses") {
      if (!u32(o.source_addresses, 0, 65000)) return bad("must be 0..65000");
    } else if (flag == "--handshake-timeout-ms") {
      if (!u32(o.handshake_timeout_ms, 100, 600000)) return bad("must be 100..600000");
    } else if (flag == "--ca") {
      o.ca_file = std::string(value);
    } else if (flag == "--churn-rate") {
      if (!positive(o.churn_rate, true)) return bad("must be a non-negative number");
      churn_given = true;
    } else if (flag == "--sample-every") {
      if (!positive(o.sample_every_s, false) || o.sample_every_s > 3600) return bad("must be a number of seconds in (0, 3600]");
    } else if (flag == "--pid") {
      if (!parse_number(value, o.pid) || o.pid <= 0) return bad("must be a process id");
    } else if (flag == "--cpu-pid") {
      int pid = 0;
      if (!parse_number(value, pid) || pid <= 0) return bad("must be a process id");
      o.cpu_pids.push_back(pid);
    } else {
      return {false, fmt::format("unknown option {} (see --help)", flag)};
    }
  }
  if (!scenario_given)
    return {false, "a scenario is required: join, idle, relay, cross, echo, handshake, soak or tracker (see --help)"};
  if (urls.empty()) urls.emplace_back("ws://127.0.0.1:8445/ws");
  for (const std::string& text : urls) {
    auto url = parse_target_url(text);
    if (!url) return {false, url.error()};
    o.urls.push_back(std::move(*url));
  }
  const bool paired = o.scenario == Scenario::relay || o.scenario == Scenario::cross || o.scenario == Scenario::soak;
  if (o.scenario == Scenario::soak) {
    o.message_rate = rate_given ? rate : 100;
    if (o.message_rate == 0) return {false, "--rate: soak is an open loop (a positive signal rate)"};
    if (!churn_given) o.churn_rate = 10;
  } else if (churn_given) {
    return {false, "--churn-rate is for the soak scenario"};
  }
  if (paired) {
    if (rate_given) o.message_rate = rate;
    if (!connections_given) o.connections = 200;
    if (o.connections < 2) return {false, "--connections: relay and cross need at least 2 (one pair)"};
  } else if (o.scenario == Scenario::echo) {
    if (rate_given) o.message_rate = rate;
  } else if (o.scenario == Scenario::tracker) {
    if (rate_given) return {false, "--rate: tracker is a closed loop (one request, one message read, per connection)"};
  } else if (o.scenario == Scenario::handshake) {
    if (rate_given) return {false, "--rate: handshake is a closed loop (use --connections; --connect-rate ramps it)"};
    for (const TargetUrl& url : o.urls)
      if (!url.tls && !o.upgrade) return {false, fmt::format("--url {}: handshake without --upgrade needs wss://", url.text)};
  } else if (rate_given) {
    if (rate == 0) return {false, "--rate: join and idle need a positive connection rate"};
    o.connect_rate = rate;
  }
  if (o.upgrade && o.scenario != Scenario::handshake) return {false, "--upgrade is for the handshake scenario"};
  if (o.scenario == Scenario::cross && o.urls.size() < 2)
    return {false, "cross needs at least two --url (the two edges of each pair)"};
  return outcome;
}

std::string run_id() {
  uint32_t random = 0;
  if (getrandom(&random, sizeof random, 0) != sizeof random) random = static_cast<uint32_t>(monotonic_ns());
  return fmt::format("L{:08x}", random);
}

// ---- report ----

struct Totals {
  ShardReport r;
  uint64_t first_connect_ns = UINT64_MAX;
};

std::string format_ns(uint64_t ns) {
  if (ns < 10'000) return fmt::format("{:.2f} us", static_cast<double>(ns) / 1e3);
  if (ns < 10'000'000) return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
}

std::string text_percentiles(const LatencyHistogram& h) {
  if (h.count() == 0) return "no samples";
  return fmt::format("p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})", format_ns(h.percentile(50)),
                     format_ns(h.percentile(90)), format_ns(h.percentile(99)), format_ns(h.percentile(99.9)),
                     format_ns(h.max()), h.count());
}

std::string json_percentiles(const LatencyHistogram& h) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  return fmt::format(R"({{"count":{},"p50":{:.1f},"p90":{:.1f},"p99":{:.1f},"p99_9":{:.1f},"max":{:.1f},"mean":{:.1f}}})",
                     h.count(), us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
                     us(h.percentile(99.9)), us(h.max()), us(h.mean()));
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// soak: the sampled series and the growth after the warm-up (the first
// quarter of the window: buffers, pools and caches reach their steady size).
// Appends "soak":{...}, to `json`.
std::string soak_report(const LoadRun& run, std::string& json) {
  const LoadOptions& o = run.options;
  const auto& samples = run.soak_samples;
  std::string text = fmt::format("soak: relay open loop at {}/s, churn {} pairs/s (leave + rejoin), sampled every {} s\n",
                                 o.message_rate, o.churn_rate, o.sample_every_s);
  std::string series;
  for (const SoakSample& s : samples) {
    text += fmt::format("soak sample: t {:7.1f} s  rss {:8.1f} MiB  descriptors {:6}  open {:7}  rejoins {:8}  signals {:10}\n",
                        s.at_s, s.rss_kb / 1024.0, s.descriptors, s.open, s.rejoins, s.signals_received);
    series += fmt::format(R"({}{{"t":{:.1f},"rssKb":{},"descriptors":{},"open":{},"rejoins":{},"signals":{}}})",
                          series.empty() ? "" : ",", s.at_s, s.rss_kb, s.descriptors, s.open, s.rejoins,
                          s.signals_received);
  }
  int64_t growth_kb = 0, overall_kb = 0;
  int64_t fd_growth = 0;
  double warm_at = 0;
  if (samples.size() >= 2) {
    const double warmup_s = samples.back().at_s / 4;
    size_t w = 0;
    while (w + 1 < samples.size() && samples[w].at_s < warmup_s) ++w;
    warm_at = samples[w].at_s;
    growth_kb = static_cast<int64_t>(samples.back().rss_kb) - static_cast<int64_t>(samples[w].rss_kb);
    overall_kb = static_cast<int64_t>(samples.back().rss_kb) - static_cast<int64_t>(samples.front().rss_kb);
    fd_growth = static_cast<int64_t>(samples.back().descriptors) - static_cast<int64_t>(samples[w].descriptors);
    text += fmt::format("soak growth: RSS {:+} KiB after the warm-up (t >= {:.1f} s), {:+} KiB over the window; "
                        "descriptors {:+} after the warm-up ({} -> {})\n",
                        growth_kb, warm_at, overall_kb, fd_growth, samples[w].descriptors, samples.back().descriptors);
  }
  json = fmt::format(R"("soak":{{"rate":{},"churnRate":{},"sampleEverySeconds":{},"warmupEndSeconds":{:.1f},"rssGrowthKb":{},"rssGrowthOverallKb":{},"descriptorGrowth":{},"samples":[{}]}},)",
                     o.message_rate, o.churn_rate, o.sample_every_s, warm_at, growth_kb, overall_kb, fd_growth, series);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions options;
  ParseOutcome parsed = parse_arguments(argc, argv, options);
  if (parsed.help) {
    std::fputs(usage_text.data(), stdout);
    return 0;
  }
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "mf-load: %s\n", parsed.error.c_str());
    return 2;
  }
  options.progress = isatty(STDERR_FILENO) != 0;
  // The runtime's per-shard start/stop notes would interleave with the report.
  log::set_level(log::Level::warning);

  const uint32_t table_limit = raise_descriptor_limit();
  const bool paired = options.scenario == Scenario::relay || options.scenario == Scenario::cross ||
                      options.scenario == Scenario::soak;
  // Scenarios that time messages through the server (signals or echoes).
  const bool messaging = paired || options.scenario == Scenario::echo || options.scenario == Scenario::tracker;
  const uint64_t per_shard = (uint64_t{options.connections} + options.shards - 1) / options.shards;
  if (per_shard + 64 > table_limit) {
    std::fprintf(stderr,
                 "mf-load: %llu connections per shard exceed the ring's descriptor table (%u, RLIMIT_NOFILE - 64): "
                 "add --shards\n",
                 static_cast<unsigned long long>(per_shard), table_limit - 64);
    return 2;
  }
  if (auto probe = probe_io_uring_support(); !probe) {
    std::fprintf(stderr, "mf-load: %s\n", probe.error().c_str());
    return 1;
  }
  for (const TargetUrl& url : options.urls) {
    if (!url.tls) continue;
    tls::ClientContextConfig config;
    config.verify_peer = !options.insecure;
    config.ca_file = options.ca_file;
    auto context = tls::Context::make_client(config);
    if (!context) {
      std::fprintf(stderr, "mf-load: %s\n", context.error().c_str());
      return 2;
    }
    break;
  }

  LoadRun run;
  run.options = options;
  run.run_id = run_id();
  run.progress = std::make_unique<ShardProgress[]>(options.shards);
  run.reports.resize(options.shards);
  if (options.pid != 0) {
    auto rss = read_vm_rss_kb(options.pid);
    if (!rss) {
      std::fprintf(stderr, "mf-load: --pid %d: cannot read VmRSS from /proc/%d/status\n", options.pid, options.pid);
      return 2;
    }
    run.rss_start_kb = *rss;
  }
  for (int pid : options.cpu_pids) {
    if (!read_cpu_ticks(pid)) {
      std::fprintf(stderr, "mf-load: --cpu-pid %d: cannot read /proc/%d/stat\n", pid, pid);
      return 2;
    }
  }
  const double ramp_s = options.connections / options.connect_rate;
  const uint64_t second = 1'000'000'000;
  run.start_ns = monotonic_ns();
  run.ramp_deadline_ns =
      run.start_ns + static_cast<uint64_t>((ramp_s + options.handshake_timeout_ms / 1000.0 + 5) * 1e9);
  const double budget_s = options.scenario == Scenario::join
                              ? options.duration_s
                              : ramp_s + options.handshake_timeout_ms / 1000.0 + 5 + options.duration_s;
  run.hard_deadline_ns = run.start_ns + static_cast<uint64_t>(budget_s * 1e9) + 30 * second;

  ShardGroup::block_process_signals();
  ShardGroup group;
  run.group = &group;
  ShardGroupOptions group_options;
  group_options.shard_count = options.shards;
  // Leave placement to the caller (taskset): the group would pin shard i to
  // CPU i whatever the process's affinity mask says.
  group_options.pin_threads = false;
  group_options.reactor.max_sockets = table_limit;

  // Last resort if a shard never stops: the shards enforce the hard deadline
  // themselves; this only guards against a wedged loop.
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    while (!finished.load()) {
      if (monotonic_ns() > run.hard_deadline_ns + 15 * second) {
        std::fprintf(stderr, "\nmf-load: shards did not stop 15 s after the hard deadline; exiting\n");
        std::_Exit(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto result = group.run(group_options, [&](Shard& shard) { return LoadClient::create(shard, run); });
  finished.store(true);
  watchdog.join();
  const uint64_t end_ns = monotonic_ns();
  if (options.progress) std::fputc('\n', stderr);
  if (!result) {
    std::fprintf(stderr, "mf-load: %s\n", result.error().c_str());
    return 1;
  }

  // ---- merge ----
  ShardReport t;
  uint64_t first_connect = UINT64_MAX;
  for (const ShardReport& r : run.reports) {
    t.connect_to_peers.merge(r.connect_to_peers);
    t.join_to_peers.merge(r.join_to_peers);
    t.relay.merge(r.relay);
    t.handshake.merge(r.handshake);
    t.errors.merge(r.errors);
    t.connects_started += r.connects_started;
    t.joined += r.joined;
    t.failed += r.failed;
    t.signals_sent += r.signals_sent;
    t.signals_received += r.signals_received;
    t.signals_in_window += r.signals_in_window;
    t.pings_answered += r.pings_answered;
    t.reconnects += r.reconnects;
    t.warmup_retries += r.warmup_retries;
    t.handshakes += r.handshakes;
    t.handshakes_in_window += r.handshakes_in_window;
    if (r.first_connect_ns != 0) first_connect = std::min(first_connect, r.first_connect_ns);
    t.last_join_ns = std::max(t.last_join_ns, r.last_join_ns);
  }
  const uint64_t unfinished = t.connects_started - t.joined - t.failed;
  const double join_span_s =
      t.joined > 0 && first_connect != UINT64_MAX ? static_cast<double>(t.last_join_ns - first_connect) / 1e9 : 0;
  const double joins_per_s = join_span_s > 0 ? static_cast<double>(t.joined) / join_span_s : 0;
  const uint64_t measure_start = run.measure_start_ns.load();
  uint64_t measure_end = run.measure_end_ns.load();
  if (measure_end == 0) measure_end = end_ns;
  const double window_s = measure_start != 0 && measure_end > measure_start
                              ? static_cast<double>(measure_end - measure_start) / 1e9
                              : 0;
  const double signals_per_s = window_s > 0 ? static_cast<double>(t.signals_in_window) / window_s : 0;
  const uint64_t rss_start = run.rss_start_kb.load(), rss_end = run.rss_end_kb.load();
  const uint64_t held = run.open_at_measure_end.load();
  const double rss_per_peer_bytes =
      held > 0 && rss_end > rss_start ? static_cast<double>(rss_end - rss_start) * 1024.0 / static_cast<double>(held) : 0;
  const bool cycling = options.scenario == Scenario::handshake;
  const double handshakes_per_s = window_s > 0 ? static_cast<double>(t.handshakes_in_window) / window_s : 0;
  const bool succeeded = messaging ? t.signals_received > 0 : cycling ? t.handshakes > 0 : t.joined > 0;
  // --cpu-pid: each process's CPU seconds over the measured window, and per
  // message (relayed signal, echoed message or handshake) in the window.
  const uint64_t in_window = messaging ? t.signals_in_window : cycling ? t.handshakes_in_window : 0;
  const double tick_s = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  // Per --cpu-pid, the seconds of CPU in the window: in all, in user space
  // and in the kernel; negative: unreadable.
  std::vector<double> cpu_s, user_s, system_s;
  if (run.cpu_start_ticks.size() == options.cpu_pids.size() && run.cpu_end_ticks.size() == options.cpu_pids.size()) {
    for (size_t i = 0; i < options.cpu_pids.size(); ++i) {
      const std::optional<CpuTicks> a = run.cpu_start_ticks[i], b = run.cpu_end_ticks[i];
      const bool valid = a && b && b->user >= a->user && b->system >= a->system;
      user_s.push_back(valid ? static_cast<double>(b->user - a->user) * tick_s : -1);
      system_s.push_back(valid ? static_cast<double>(b->system - a->system) * tick_s : -1);
      cpu_s.push_back(valid ? user_s.back() + system_s.back() : -1);
    }
  }

  // ---- text report ----
  std::string text;
  std::string urls;
  for (const TargetUrl& url : options.urls) urls += (urls.empty() ? "" : ", ") + url.text;
  text += fmt::format("mf-load {}: {} connections to {}, {} shard(s), run {}, {:.1f} s\n",
                      scenario_name(options.scenario), options.connections, urls, options.shards, run.run_id,
                      static_cast<double>(end_ns - run.start_ns) / 1e9);
  if (cycling) {
    // Each slot opens many connections: the ones neither completed nor
    // counted as an error were cut by the end of the run.
    const uint64_t ended = t.handshakes + t.errors.total();
    text += fmt::format("connections: started {} over {} slots, completed {}, errors {}, cut at the end {}\n",
                        t.connects_started, options.connections, t.handshakes, t.errors.total(),
                        t.connects_started > ended ? t.connects_started - ended : 0);
  } else {
    text += fmt::format("connections: started {}, joined {}, failed {}, unfinished {}\n", t.connects_started,
                        t.joined, t.failed, unfinished);
  }
  if (cycling) {
    // Slots, not connections: each slot opened many; "joined" = its first cycle completed.
    text += fmt::format("handshake: {} handshakes/s over a {:.2f} s window ({} in window, {} in all; {}, {} slots)\n",
                        std::llround(handshakes_per_s), window_s, t.handshakes_in_window, t.handshakes,
                        options.upgrade ? "TLS + upgrade" : "TLS only", options.connections);
    text += fmt::format("handshake latency, connect -> {}: {}\n", options.upgrade ? "101" : "TLS done",
                        text_percentiles(t.handshake));
  } else {
    text += fmt::format("joins/s: {:.1f} ({} joins in {:.2f} s)\n", joins_per_s, t.joined, join_span_s);
    text += fmt::format("join latency, connect -> peers: {}\n", text_percentiles(t.connect_to_peers));
    text += fmt::format("join latency, join -> peers:    {}\n", text_percentiles(t.join_to_peers));
  }
  if (options.scenario == Scenario::echo) {
    text += fmt::format("echo: {} messages/s over a {:.2f} s window ({} in window; {} sent, {} received in all; {})\n",
                        std::llround(signals_per_s), window_s, t.signals_in_window, t.signals_sent, t.signals_received,
                        options.message_rate > 0 ? fmt::format("open loop at {}/s", options.message_rate)
                                                 : fmt::format("closed loop, window {}", options.window));
    text += fmt::format("echo latency (round trip): {}\n", text_percentiles(t.relay));
  }
  if (options.scenario == Scenario::tracker) {
    text += fmt::format("tracker: {} messages/s received over a {:.2f} s window ({} in window; {} requests sent, {} "
                        "messages received in all; closed loop, 1 request per connection)\n",
                        std::llround(signals_per_s), window_s, t.signals_in_window, t.signals_sent, t.signals_received);
    text += fmt::format("tracker latency (request sent -> next message read): {}\n", text_percentiles(t.relay));
  }
  if (paired) {
    text += fmt::format("relay: {} signals/s over a {:.2f} s window ({} in window; {} sent, {} received in all; {})\n",
                        std::llround(signals_per_s), window_s, t.signals_in_window, t.signals_sent, t.signals_received,
                        options.message_rate > 0 ? fmt::format("open loop at {}/s", options.message_rate)
                                                 : fmt::format("closed loop, window {}", options.window));
    text += fmt::format("relay latency: {}\n", text_percentiles(t.relay));
    if (t.warmup_retries > 0)
      text += fmt::format("warm-up: {} signals refused with peer-not-found before their pair connected, retried\n",
                          t.warmup_retries);
    if (t.signals_received == 0 && t.warmup_retries > 0 && options.scenario == Scenario::cross)
      text += "no signal crossed between the edges: do they share a peer directory (cross-edge cluster)?\n";
  }
  std::string soak_json;
  if (options.scenario == Scenario::soak) text += soak_report(run, soak_json);
  if (options.scenario == Scenario::idle)
    text += fmt::format("idle: held {} peers for {:.2f} s; answered {} pings\n", held, window_s, t.pings_answered);
  if (options.pid != 0) {
    text += fmt::format("server RSS (pid {}): start {:.1f} MiB, end {:.1f} MiB", options.pid, rss_start / 1024.0,
                        rss_end / 1024.0);
    if (held > 0) text += fmt::format(", {:.0f} bytes per peer over {} peers", rss_per_peer_bytes, held);
    text += "\n";
  }
  for (size_t i = 0; i < cpu_s.size(); ++i) {
    if (cpu_s[i] < 0) {
      text += fmt::format("server CPU (pid {}): unreadable\n", options.cpu_pids[i]);
    } else {
      text += fmt::format("server CPU (pid {}): {:.2f} s in the window ({:.2f} user, {:.2f} system)",
                          options.cpu_pids[i], cpu_s[i], user_s[i], system_s[i]);
      if (in_window > 0) text += fmt::format(", {:.2f} us per message", cpu_s[i] * 1e6 / static_cast<double>(in_window));
      text += "\n";
    }
  }
  if (!options.cpu_pids.empty() && cpu_s.empty()) text += "server CPU: no measured window\n";
  // TCP segments sent in the window by the whole namespace (on loopback:
  // the clients' and the servers'), per message: how many messages the
  // kernel carries per segment, the kernel's share of the work.
  const bool segments_counted = in_window > 0 && run.tcp_segments_start && run.tcp_segments_end &&
                                *run.tcp_segments_end >= *run.tcp_segments_start;
  const uint64_t segments = segments_counted ? *run.tcp_segments_end - *run.tcp_segments_start : 0;
  const double segments_per_message =
      segments_counted ? static_cast<double>(segments) / static_cast<double>(in_window) : 0;
  if (segments_counted)
    text += fmt::format("TCP segments sent on this host in the window: {} ({:.3f} per message)\n", segments,
                        segments_per_message);
  if (t.reconnects > 0) text += fmt::format("reconnect messages: {}\n", t.reconnects);
  if (run.hit_hard_deadline.load()) text += "stopped by the hard deadline\n";
  if (t.errors.counts.empty()) {
    text += "errors: none\n";
  } else {
    text += fmt::format("errors: {}\n", t.errors.total());
    for (const auto& [key, n] : t.errors.counts)
      text += fmt::format("  {} {}: {}\n", error_kind_name(key.first), key.second, n);
  }

  if (!options.json) {
    std::fputs(text.c_str(), stdout);
    return succeeded ? 0 : 1;
  }
  std::fputs(text.c_str(), stderr);

  // ---- JSON (latencies in microseconds) ----
  std::string j = "{";
  j += fmt::format(R"("scenario":"{}","runId":"{}","urls":[)", scenario_name(options.scenario), run.run_id);
  for (size_t i = 0; i < options.urls.size(); ++i) j += (i ? "," : "") + json_string(options.urls[i].text);
  j += fmt::format(R"(],"shards":{},"seconds":{:.3f},"hardDeadline":{},)", options.shards,
                   static_cast<double>(end_ns - run.start_ns) / 1e9, run.hit_hard_deadline.load());
  j += fmt::format(R"("connections":{{"requested":{},"started":{},"joined":{},"failed":{},"unfinished":{}}},)",
                   options.connections, t.connects_started, t.joined, t.failed, unfinished);
  j += fmt::format(R"("joinsPerSecond":{:.1f},"joinLatencyUs":{{"connectToPeers":{},"joinToPeers":{}}},)", joins_per_s,
                   json_percentiles(t.connect_to_peers), json_percentiles(t.join_to_peers));
  if (messaging) {
    // echo reports under its own key with the relay's fields, so one
    // reader (perf/compare) takes either.
    j += paired ? R"("relay":)" : options.scenario == Scenario::tracker ? R"("tracker":)" : R"("echo":)";
    j += fmt::format(
        R"({{"mode":"{}","window":{},"rate":{},"size":{},"windowSeconds":{:.3f},"signalsPerSecond":{:.1f},"inWindow":{},"sent":{},"received":{},"warmupRetries":{},"latencyUs":{}}},)",
        options.message_rate > 0 ? "open" : "closed", options.window, options.message_rate, options.size, window_s,
        signals_per_s, t.signals_in_window, t.signals_sent, t.signals_received, t.warmup_retries,
        json_percentiles(t.relay));
  }
  if (cycling)
    j += fmt::format(
        R"("handshake":{{"upgrade":{},"slots":{},"windowSeconds":{:.3f},"handshakesPerSecond":{:.1f},"inWindow":{},"completed":{},"latencyUs":{}}},)",
        options.upgrade, options.connections, window_s, handshakes_per_s, t.handshakes_in_window, t.handshakes,
        json_percentiles(t.handshake));
  j += soak_json;
  if (options.scenario == Scenario::idle)
    j += fmt::format(R"("idle":{{"held":{},"seconds":{:.3f},"pingsAnswered":{}}},)", held, window_s, t.pings_answered);
  if (options.pid != 0)
    j += fmt::format(R"("serverRss":{{"pid":{},"startKb":{},"endKb":{},"peers":{},"bytesPerPeer":{:.0f}}},)",
                     options.pid, rss_start, rss_end, held, rss_per_peer_bytes);
  if (!options.cpu_pids.empty()) {
    // serverCpu.seconds[i] belongs to pids[i]; null: unreadable or no window.
    // userSeconds and systemSeconds split seconds: user space, and the
    // kernel on the process's behalf (the stime of /proc/PID/stat).
    const auto list = [&](const std::vector<double>& values) {
      std::string out;
      for (size_t i = 0; i < options.cpu_pids.size(); ++i) {
        out += i ? "," : "";
        out += i < values.size() && values[i] >= 0 ? fmt::format("{:.3f}", values[i]) : std::string("null");
      }
      return out;
    };
    std::string pids;
    for (size_t i = 0; i < options.cpu_pids.size(); ++i) pids += fmt::format("{}{}", i ? "," : "", options.cpu_pids[i]);
    j += fmt::format(
        R"("serverCpu":{{"pids":[{}],"seconds":[{}],"userSeconds":[{}],"systemSeconds":[{}],"messages":{},)"
        R"("clockTickSeconds":{}}},)",
        pids, list(cpu_s), list(user_s), list(system_s), in_window, tick_s);
  }
  if (segments_counted)
    j += fmt::format(R"("tcpSegments":{{"sent":{},"perMessage":{:.4f}}},)", segments, segments_per_message);
  j += fmt::format(R"("reconnects":{},"errors":{{)", t.reconnects);
  bool first_kind = true;
  for (ErrorKind kind : {ErrorKind::connect, ErrorKind::tls, ErrorKind::upgrade, ErrorKind::protocol,
                         ErrorKind::timeout, ErrorKind::sdk_error, ErrorKind::close}) {
    std::string entries;
    for (const auto& [key, n] : t.errors.counts)
      if (key.first == kind) entries += fmt::format("{}{}:{}", entries.empty() ? "" : ",", json_string(key.second), n);
    if (entries.empty()) continue;
    j += fmt::format("{}\"{}\":{{{}}}", first_kind ? "" : ",", error_kind_name(kind), entries);
    first_kind = false;
  }
  j += "}}\n";
  std::fputs(j.c_str(), stdout);
  return succeeded ? 0 : 1;
}
