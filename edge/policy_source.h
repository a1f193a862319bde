#pragma once
// The policy-source role of shard 0 (docs/cluster.md, "The policy in Valkey";
// docs/edge.md, [policy]): which policy document is in force. The policy in
// Valkey wins while its key exists; else the file's last accepted document;
// else the defaults main() started with. Pure: the shard feeds it what it read
// (the file, the key's value) and pushes effective() to every shard when it
// changed.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edge/policy.h"

namespace mf::edge {

class PolicySource {
 public:
  explicit PolicySource(std::shared_ptr<const PolicyDocument> defaults) : defaults_(std::move(defaults)) {}

  // The file's document was read and accepted (common/config/watched_files.h).
  void file_loaded(std::shared_ptr<const PolicyDocument> document) { from_file_ = std::move(document); }

  enum class ValkeyChange : uint8_t {
    unchanged,  // the same value as last time (applied or refused then), or still no key
    removed,    // the key went away: back to the file's or the defaults
    loaded,     // a new valid document
    invalid,    // a new value that does not parse: the current policy stays
  };
  struct ValkeyResult {
    ValkeyChange change = ValkeyChange::unchanged;
    std::string error;  // invalid: why
  };
  // The key's value as read (nullopt: no such key).
  ValkeyResult valkey_read(std::optional<std::string_view> text);

  bool valkey_wins() const { return from_valkey_ != nullptr; }
  std::shared_ptr<const PolicyDocument> effective() const {
    if (from_valkey_) return from_valkey_;
    if (from_file_) return from_file_;
    return defaults_;
  }

 private:
  std::shared_ptr<const PolicyDocument> defaults_;
  std::shared_ptr<const PolicyDocument> from_file_;
  std::shared_ptr<const PolicyDocument> from_valkey_;
  std::string valkey_text_;  // the key's last value seen (applied or refused)
};

}  // namespace mf::edge
