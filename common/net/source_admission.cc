#include "common/net/source_admission.h"

namespace mf {

SourceAdmission::Start SourceAdmission::acquire(const SourceKey& key, uint32_t slot, uint32_t generation,
                                                const SourceLimitSettings& limits, uint64_t now_ms) {
  uint32_t to = owner(key);
  if (to == shard_) {
    SourceVerdict verdict = limiter_.acquire(key, limits, now_ms);
    return Start{verdict == SourceVerdict::admitted ? Step::admitted : Step::refused, verdict};
  }
  auto request = std::make_unique<SourceRequest>();
  request->key = key;
  request->slot = slot;
  request->generation = generation;
  request->shard = shard_;
  if (!messenger_.send_acquire(to, std::move(request))) return Start{Step::busy};
  return Start{Step::pending};
}

void SourceAdmission::on_acquire(std::unique_ptr<SourceRequest> request, const SourceLimitSettings& limits,
                                 uint64_t now_ms) {
  request->verdict = limiter_.acquire(request->key, limits, now_ms);
  uint32_t back = request->shard;
  messenger_.send_verdict(back, std::move(request));  // the asking shard waits for it
}

std::optional<SourceVerdict> SourceAdmission::on_verdict(std::unique_ptr<SourceRequest> request, bool waiting) {
  if (waiting) return request->verdict;
  // The connection left meanwhile: give its place back.
  if (request->verdict == SourceVerdict::admitted) {
    uint32_t to = owner(request->key);
    messenger_.send_release(to, std::move(request));
  }
  return std::nullopt;
}

void SourceAdmission::release(const SourceKey& key, uint64_t now_ms) {
  uint32_t to = owner(key);
  if (to == shard_) {
    limiter_.release(key, now_ms);
    return;
  }
  auto request = std::make_unique<SourceRequest>();
  request->key = key;
  messenger_.send_release(to, std::move(request));  // undoes a count: never dropped
}

}  // namespace mf
