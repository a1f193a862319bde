#pragma once
// Per-source admission across the shards of one process, for both programs
// (docs/security.md, "Connection admission"): each source address (cut to
// its prefix, SourceKey::of) is counted by the one shard it hashes to, so a
// limit holds process-wide while every table stays shard-local (rule 2).
// A connection accepted on another shard asks that owner by message and
// waits for the verdict; what was counted is given back exactly once, by
// message if need be: a verdict for a connection that left meanwhile, or
// the release when an admitted connection ends (docs/architecture.md,
// "Obligations").
//
// The program's shard carries the three messages with its own message kinds
// (SourceMessenger) and keeps, per connection, the key and whether it was
// counted; this class does the rest.
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "common/net/source_limits.h"

namespace mf {

// The payload of the three messages: acquire (to the owner), verdict (back
// to the connection's shard), release (to the owner).
struct SourceRequest {
  SourceKey key;
  // The asking connection, as its shard names it (a socket slot and its
  // generation): the verdict finds it, or finds it gone.
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint32_t shard = 0;  // the connection's
  SourceVerdict verdict = SourceVerdict::admitted;
};

class SourceMessenger {
 public:
  // May fail (a full mailbox): the connection is then refused.
  virtual bool send_acquire(uint32_t owner, std::unique_ptr<SourceRequest> request) = 0;
  // An answer and an undo: never dropped (the shard's obligation path).
  virtual void send_verdict(uint32_t shard, std::unique_ptr<SourceRequest> request) = 0;
  virtual void send_release(uint32_t owner, std::unique_ptr<SourceRequest> request) = 0;

 protected:
  ~SourceMessenger() = default;
};

// The SourceMessenger of a shard whose messages are typed (common/runtime/
// shard_messages.h): Acquire, Answer and Release each wrap the request, and
// Shard::send(to, message) posts one. Answer and Release are must-arrive
// types, so their send returns nothing and cannot fail. Shard befriends
// this class if its send() is private.
template <typename Shard, typename Acquire, typename Answer, typename Release>
class TypedSourceMessenger final : public SourceMessenger {
 public:
  explicit TypedSourceMessenger(Shard& shard) : shard_(shard) {}
  bool send_acquire(uint32_t owner, std::unique_ptr<SourceRequest> request) override {
    return shard_.send(owner, Acquire(std::move(request)));
  }
  void send_verdict(uint32_t shard, std::unique_ptr<SourceRequest> request) override {
    shard_.send(shard, Answer(std::move(request)));
  }
  void send_release(uint32_t owner, std::unique_ptr<SourceRequest> request) override {
    shard_.send(owner, Release(std::move(request)));
  }

 private:
  Shard& shard_;
};

class SourceAdmission {
 public:
  SourceAdmission(uint32_t shard, uint32_t shards, SourceMessenger& messenger)
      : shard_(shard), shards_(shards), messenger_(messenger) {}

  enum class Step : uint8_t {
    admitted,  // counted here (release() it when the connection ends)
    refused,   // over a limit: `verdict` says which
    pending,   // asked the owner: on_verdict() brings the answer
    busy,      // the owner could not be asked (its mailbox is full): refuse
  };
  struct Start {
    Step step;
    SourceVerdict verdict = SourceVerdict::admitted;
  };

  // At accept, on the connection's shard.
  Start acquire(const SourceKey& key, uint32_t slot, uint32_t generation, const SourceLimitSettings& limits,
                uint64_t now_ms);

  // On the owner: counts and answers.
  void on_acquire(std::unique_ptr<SourceRequest> request, const SourceLimitSettings& limits, uint64_t now_ms);

  // On the connection's shard. `waiting`: the connection (slot, generation) still waits
  // for this verdict; then the verdict is returned (admitted: counted, so
  // release() it at the end). Otherwise a place granted goes back to the
  // owner and nothing is returned.
  std::optional<SourceVerdict> on_verdict(std::unique_ptr<SourceRequest> request, bool waiting);

  // An admitted connection ended (its shard).
  void release(const SourceKey& key, uint64_t now_ms);
  // On the owner.
  void on_release(std::unique_ptr<SourceRequest> request, uint64_t now_ms) { limiter_.release(request->key, now_ms); }

  // Forgets quiet sources (SourceLimiter::sweep): run every few seconds.
  void sweep(uint64_t now_ms) { limiter_.sweep(now_ms); }

  uint32_t owner(const SourceKey& key) const { return static_cast<uint32_t>(SourceKeyHash{}(key) % shards_); }
  // This shard's slice of the counts (metrics).
  const SourceLimiter& limiter() const { return limiter_; }

 private:
  uint32_t shard_;
  uint32_t shards_;
  SourceMessenger& messenger_;
  SourceLimiter limiter_;
};

}  // namespace mf
