#pragma once
// Test support for the Valkey clients' tests: records every completion,
// link state change and pub/sub message the client hands to its handlers,
// in the order they came, for the test to inspect after the event.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/valkey/valkey_client.h"

namespace mf::valkey::test {

struct Result {
  uint64_t cookie;
  CommandStatus status;
  resp::ReplyType type;
  std::string text;
  int64_t integer;
};

struct StateRecord {
  Role role;
  LinkState state;
  Reason reason;
  std::string detail;
};

struct Recorder {
  std::vector<Result> results;
  std::vector<StateRecord> states;
  std::vector<std::pair<std::string, std::string>> messages;

  static void on_reply(void* context, uint64_t cookie, CommandStatus status, const resp::ReplyView* reply) {
    auto* self = static_cast<Recorder*>(context);
    Result r{cookie, status, resp::ReplyType::nil, {}, 0};
    if (reply != nullptr) {
      r.type = reply->type();
      r.text = std::string(reply->text());
      r.integer = reply->integer();
    }
    self->results.push_back(std::move(r));
  }
  static void on_state(void* context, const StateEvent& e) {
    static_cast<Recorder*>(context)->states.push_back({e.role, e.state, e.reason, std::string(e.detail)});
  }
  static void on_message(void* context, std::string_view channel, std::string_view payload) {
    static_cast<Recorder*>(context)->messages.emplace_back(channel, payload);
  }
  Completion done(uint64_t cookie) { return Completion{&Recorder::on_reply, this, cookie}; }
  size_t count_states(Role role, LinkState state, Reason reason) const {
    size_t n = 0;
    for (const auto& s : states) n += s.role == role && s.state == state && s.reason == reason;
    return n;
  }
};

}  // namespace mf::valkey::test
