// Each step of one relayed signal's path on the edge (docs/architecture.md,
// "The relay path"), so that a regression shows in one number: open (TLS
// record), parse (SDK message), route (directory lookup), render (the
// `signal` text into a recycled packet), seal (WebSocket header and payload
// into one record, in place in the send queue) and queue (append and send).
// A signal of 200 bytes of data, as perf/compare relays.
//
// In a test build without a sanitizer the binary counts heap allocations
// (common/base/counting_allocator.cc): each benchmark then reports allocs/msg.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/base/heap_allocation_counter.h"
#include "common/tls/tls_record_layer.h"
#include "common/codec/websocket_codec.h"
#include "edge/peer_directory.h"
#include "edge/sdk_message.h"
#include "edge/sdk_reply.h"
#include "edge/signal_packet_pool.h"

namespace mf {
namespace {

using tls::CiphertextSink;
using tls::RecordLayer;

constexpr size_t data_bytes = 200;

std::string signal_data() {
  std::string data = R"({"t":"1234567890123","p":")";
  while (data.size() < data_bytes - 2) data += 'x';
  return data + "\"}";
}

std::string signal_request() {
  return R"({"type":"signal","to":"L1a2b3c4d-123","kind":"offer","data":)" + signal_data() + "}";
}

// The relayed signal as T sends it: its text, and the WebSocket frame's
// header and the text as the two pieces the server seals or queues.
struct SignalFrame {
  SignalFrame() {
    const size_t header_size = ws::encode_header(header, ws::Opcode::text, true, text.size(), nullptr);
    pieces[0] = {header, header_size};
    pieces[1] = {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  }
  SignalFrame(const SignalFrame&) = delete;  // the pieces point into this one
  SignalFrame& operator=(const SignalFrame&) = delete;

  const std::string text = R"({"type":"signal","from":"L1a2b3c4d-122","kind":"offer","data":)" + signal_data() + "}";
  uint8_t header[ws::max_header_bytes];
  std::span<const uint8_t> pieces[2];
};

// Heap allocations per item, when counted.
class AllocationsPerItem {
 public:
  AllocationsPerItem() : start_(heap_allocations()) {}
  void report(benchmark::State& state) const {
    if (!heap_allocations_counted() || state.iterations() == 0) return;
    state.counters["allocs/msg"] = static_cast<double>(heap_allocations() - start_) /
                                   static_cast<double>(state.iterations());
  }

 private:
  uint64_t start_;
};

BlockPool& pool() {
  static BlockPool blocks(65536, 1024);
  return blocks;
}

// A socket's send queue as the server's connection is: records sealed in
// place when they fit one block, else appended.
struct QueueSink final : CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> bytes) override { return queue.append(pool(), bytes); }
  uint8_t* reserve_ciphertext(size_t n) override { return in_place ? queue.reserve(pool(), n) : nullptr; }
  void commit_ciphertext(size_t n) override { queue.commit(n); }
  ByteQueue queue;
  bool in_place = true;
};

struct VectorSink final : CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> bytes) override {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return true;
  }
  std::vector<uint8_t> bytes_;
};

void install(RecordLayer& sender, RecordLayer& receiver) {
  const std::vector<uint8_t> a(32, 0x11), b(32, 0x22);
  if (!sender.install(tls::kTlsAes128GcmSha256, a, b, 0, pool()) ||
      !receiver.install(tls::kTlsAes128GcmSha256, b, a, 0, pool()))
    std::abort();
}

std::array<uint8_t, 16384> scratch;

// A client's records of the request, sealed 4,096 at a time outside the
// timing; next() hands out the rest of the current batch.
class ClientRecords {
 public:
  ClientRecords(RecordLayer& sender, std::string request) : sender_(sender), request_(std::move(request)) { refill(); }
  std::span<const uint8_t>& next(benchmark::State& state) {
    if (in_.empty()) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    return in_;
  }

 private:
  void refill() {
    wire_.bytes_.clear();
    const std::span<const uint8_t> piece(reinterpret_cast<const uint8_t*>(request_.data()), request_.size());
    for (int i = 0; i < 4096; ++i)
      if (!sender_.seal({&piece, 1}, wire_)) std::abort();
    in_ = std::span<const uint8_t>(wire_.bytes_);
  }
  RecordLayer& sender_;
  std::string request_;
  VectorSink wire_;
  std::span<const uint8_t> in_;
};

// open: one client record (a masked frame of the request) opened into the
// scratch, as the server's connection does on every read.
void BM_RelayOpen(benchmark::State& state) {
  RecordLayer sender, receiver;
  install(sender, receiver);
  ClientRecords records(sender, signal_request());
  VectorSink back;
  AllocationsPerItem allocations;
  for (auto _ : state) {
    auto step = receiver.open_next(records.next(state), scratch, back);
    if (!step) std::abort();
    benchmark::DoNotOptimize(step->plaintext.data());
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RelayOpen);

// parse: the SDK parser's validation of the whole signal, views out.
void BM_RelayParse(benchmark::State& state) {
  const std::string request = signal_request();
  std::string storage = request + std::string(simdjson::SIMDJSON_PADDING, ' ');
  const std::string_view text(storage.data(), request.size());
  edge::SdkMessageParser parser;
  AllocationsPerItem allocations;
  for (auto _ : state) {
    auto parsed = parser.parse(text);
    if (!parsed) std::abort();
    benchmark::DoNotOptimize(parsed->signal.data_raw.data());
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RelayParse);

// route: the directory shard's lookup of the target among range(0) peers.
// BM_RelayRoute hashes the text and looks it up (a signal from a sender that
// knew no handle, the hash then computed on its shard and the lookup on D);
// ByHash is D's part alone; ByHandle resolves the handle a reply carries (an
// index, a generation check and a comparison of the text: no hashing).
struct RouteFixture {
  explicit RouteFixture(int64_t peers) {
    for (int64_t i = 0; i < peers; ++i) {
      const std::string id = "L1a2b3c4d-" + std::to_string(i);
      edge::ClaimResult r = directory.claim(id, edge::PeerLocation{0, static_cast<uint32_t>(i), 1}, 1, "L1a2b3c4d-s0",
                                            std::nullopt, "session");
      if (i == peers / 2) handle = r.handle;
    }
    target = "L1a2b3c4d-" + std::to_string(peers / 2);
  }
  edge::PeerDirectory directory;
  std::string target;
  edge::DirectoryHandle handle;
};

// One lookup of the fixture's target per iteration; `lookup` is the way.
template <class Lookup>
void run_route(benchmark::State& state, Lookup&& lookup) {
  AllocationsPerItem allocations;
  for (auto _ : state) {
    const edge::DirectoryEntry* entry = lookup();
    if (entry == nullptr) std::abort();
    benchmark::DoNotOptimize(entry);
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
}

void BM_RelayRoute(benchmark::State& state) {
  RouteFixture f(state.range(0));
  run_route(state, [&] { return f.directory.find(f.target); });
}
BENCHMARK(BM_RelayRoute)->Arg(1000)->Arg(50000);

void BM_RelayRouteByHash(benchmark::State& state) {
  RouteFixture f(state.range(0));
  const uint64_t hash = edge::PeerDirectory::hash_of(f.target);
  run_route(state, [&] { return f.directory.find(f.target, hash); });
}
BENCHMARK(BM_RelayRouteByHash)->Arg(1000)->Arg(50000);

void BM_RelayRouteByHandle(benchmark::State& state) {
  RouteFixture f(state.range(0));
  run_route(state, [&] { return f.directory.resolve(f.handle, f.target); });
}
BENCHMARK(BM_RelayRouteByHandle)->Arg(1000)->Arg(50000);

// render: a packet from the shard's pool, the ids copied in, the `signal`
// text written once into it, and the packet back to the pool.
void BM_RelayRender(benchmark::State& state) {
  const std::string data = signal_data();
  const std::string from = "L1a2b3c4d-122", to = "L1a2b3c4d-123", stream = "L1a2b3c4d-s0";
  const std::string head = edge::signal_head(from);  // rendered at the sender's join
  edge::SignalPacketPool packets(0, 1);
  AllocationsPerItem allocations;
  for (auto _ : state) {
    std::unique_ptr<edge::SignalPacket> packet = packets.acquire();
    packet->to.assign(to);
    packet->from.assign(from);
    packet->sender_stream.assign(stream);
    const size_t bound = head.size() + edge::signal_tail_bytes + data.size();
    edge::SignalPacketPool::reserve_text(*packet, bound);
    packet->text.resize_and_overwrite(bound, [&](char* out, size_t size) {
      const edge::SignalFields signal{{}, edge::SignalKind::offer, data, {}};
      return edge::write_signal(std::span<char>(out, size), head, signal).size();
    });
    benchmark::DoNotOptimize(packet->text.data());
    (void)packets.release(std::move(packet));
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RelayRender);

// seal: the frame header and the packet's text sealed as one record.
// range(0) 1: in place in the send queue (the server's path); 0: in the
// thread's workspace, then appended (what a sink without room gets).
void BM_RelaySeal(benchmark::State& state) {
  const SignalFrame frame;
  RecordLayer sender, receiver;
  install(sender, receiver);
  QueueSink sink;
  sink.in_place = state.range(0) == 1;
  AllocationsPerItem allocations;
  for (auto _ : state) {
    if (!sender.seal(frame.pieces, sink)) std::abort();
    sink.queue.consume(pool(), sink.queue.size());
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(sink.in_place ? "in place in the send queue" : "workspace, then appended");
}
BENCHMARK(BM_RelaySeal)->Arg(1)->Arg(0);

// open + seal across two connections, as a relay does: a record of
// connection A opened, the signal sealed to connection B. range(0) is the
// thread's keyed cipher contexts (tls_record_layer.h): 1 re-keys the one
// context at every record (how the layer worked before the cache), the
// default keeps both keys ready.
void BM_RelayOpenThenSealToAnother(benchmark::State& state) {
  tls::set_cipher_contexts_per_thread(static_cast<size_t>(state.range(0)));
  const SignalFrame frame;
  RecordLayer client_a, server_a, server_b, client_b;
  install(client_a, server_a);
  install(server_b, client_b);
  ClientRecords records(client_a, signal_request());
  VectorSink back;
  QueueSink sink;
  AllocationsPerItem allocations;
  for (auto _ : state) {
    auto step = server_a.open_next(records.next(state), scratch, back);
    if (!step) std::abort();
    benchmark::DoNotOptimize(step->plaintext.data());
    if (!server_b.seal(frame.pieces, sink)) std::abort();
    sink.queue.consume(pool(), sink.queue.size());
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 1 ? "one context: re-keyed at every record" : "keyed contexts kept");
  tls::set_cipher_contexts_per_thread(tls::kDefaultCipherContextsPerThread);
}
BENCHMARK(BM_RelayOpenThenSealToAnother)->Arg(1)->Arg(tls::kDefaultCipherContextsPerThread);

// queue: a plain frame's two pieces appended to a send queue and taken off
// it as a send completion does; range(0) messages per loop turn.
void BM_RelayQueue(benchmark::State& state) {
  const SignalFrame frame;
  ByteQueue queue;
  const int64_t per_turn = state.range(0);
  AllocationsPerItem allocations;
  for (auto _ : state) {
    for (int64_t i = 0; i < per_turn; ++i) {
      if (!queue.append(pool(), frame.pieces[0]) || !queue.append(pool(), frame.pieces[1]))
        std::abort();
    }
    while (queue.size() > 0) queue.consume(pool(), queue.front().size());
  }
  allocations.report(state);
  state.SetItemsProcessed(state.iterations() * per_turn);
}
BENCHMARK(BM_RelayQueue)->Arg(1)->Arg(16);

}  // namespace
}  // namespace mf
