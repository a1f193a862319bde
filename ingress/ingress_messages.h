#pragma once
// Messages between the shards of one ingress: one type per message, listed
// once in IngressMessages, which generates their kinds, their dispatch
// (IngressShard::on overloads) and their disposal (common/runtime/shard_messages.h).
// A type that declares `must_arrive` answers or undoes something and is never
// dropped (docs/architecture.md, "Mailboxes"); the others are requests the
// sender refuses itself, or health news that the next check repeats.
#include <cstdint>
#include <memory>

#include "common/runtime/shard_messages.h"
#include "common/net/source_admission.h"
#include "common/http/websocket_server.h"
#include "ingress/ingress_metrics.h"

namespace mf::ingress {

struct IngressRuntime;

// A per-source admission (common/net/source_admission.h, shared with the
// edge): asked of the source's owner shard, answered back, and later
// released there.
struct SourceAcquire : OwnedPointer<SourceRequest> {
  using OwnedPointer::OwnedPointer;
};
struct SourceAnswer : OwnedPointer<SourceRequest> {
  static constexpr bool must_arrive = true;  // the asking shard waits for it
  using OwnedPointer::OwnedPointer;
};
struct SourceRelease : OwnedPointer<SourceRequest> {
  static constexpr bool must_arrive = true;  // undoes a count
  using OwnedPointer::OwnedPointer;
};

// Shard 0's health verdict for a backend, to the other shards. Every check's
// result is sent, changed or not: a shard that missed one converges at the next.
struct BackendHealth {
  uint32_t index = 0;
  bool up = false;
};
// A connect to a backend failed on some shard: shard 0 ejects it.
struct BackendEject {
  uint32_t index = 0;
};
// An operator drained or enabled a backend and was answered "done".
struct BackendDrain {
  static constexpr bool must_arrive = true;
  uint32_t index = 0;
  bool drained = false;
};

using RuntimePointer = std::shared_ptr<const IngressRuntime>;
// A reloaded configuration (SIGHUP): a shard that missed it would keep the old one.
struct RuntimeChanged : OwnedPointer<RuntimePointer> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};
// Shard 0 reloaded the certificates: a shard that missed it would serve the old ones.
struct CertificatesChanged : OwnedPointer<RuntimePointer> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// A metrics collection round, and each shard's part back to shard 0.
struct CollectSnapshot {
  uint64_t round = 0;
};
struct SnapshotReady : OwnedPointer<IngressSnapshot> {
  static constexpr bool must_arrive = true;  // the collection waits for every part
  using OwnedPointer::OwnedPointer;
};

using IngressMessages = ShardMessageList<SourceAcquire, SourceAnswer, SourceRelease, BackendHealth, BackendEject,
                                         BackendDrain, RuntimeChanged, CertificatesChanged, CollectSnapshot,
                                         SnapshotReady>;

}  // namespace mf::ingress
