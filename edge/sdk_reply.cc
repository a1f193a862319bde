#include "edge/sdk_reply.h"

#include <cstring>

#include "common/codec/utf8_validator.h"

namespace mf::edge {
namespace {

void ref(JsonWriter& w, std::string_view ref_raw) {
  if (ref_raw.empty()) return;
  w.raw(R"(,"ref":)");
  w.raw(ref_raw);
}

std::string_view finish(JsonWriter& w) {
  w.raw("}");
  return w.ok() ? w.text() : std::string_view{};
}

}  // namespace

std::string_view write_joined(std::span<char> out, const JoinedReply& r) {
  JsonWriter w(out);
  w.raw(R"({"type":"joined","peerId":)");
  w.string(r.peer_id);
  w.raw(R"(,"streamId":)");
  w.string(r.stream_id);
  w.raw(R"(,"rendition":)");
  w.string(r.rendition);
  w.raw(R"(,"edge":)");
  w.string(r.edge_id);
  w.raw(R"(,"session":)");
  w.string(r.session);
  w.raw(R"(,"heartbeatMs":)");
  w.unsigned_number(r.heartbeat_ms);
  w.raw(R"(,"policy":)");
  w.raw(r.policy_json);
  ref(w, r.ref_raw);
  return finish(w);
}

std::string_view write_peers(std::span<char> out, std::span<const PeerCandidate> peers, std::string_view ref_raw) {
  JsonWriter w(out);
  w.raw(R"({"type":"peers","peers":[)");
  bool first = true;
  for (const PeerCandidate& p : peers) {
    w.raw(first ? R"({"peerId":)" : R"(,{"peerId":)");
    first = false;
    w.string(p.peer_id);
    w.raw(R"(,"rendition":)");
    w.string(p.rendition);
    w.raw(R"(,"topology":)");
    w.raw(p.topology_json.empty() ? std::string_view("{}") : p.topology_json);
    w.raw("}");
  }
  w.raw("]");
  ref(w, ref_raw);
  return finish(w);
}

std::string signal_head(std::string_view from) {
  constexpr std::string_view start = R"({"type":"signal","from":)";
  std::string head;
  // Escaping makes a byte at most 6; the quotes are 2 more.
  head.resize_and_overwrite(start.size() + 2 + 6 * from.size(), [&](char* out, size_t size) {
    JsonWriter w(std::span<char>(out, size));
    w.raw(start);
    w.string(from);
    return w.size() - 1;  // without the closing quote
  });
  return head;
}

std::string_view write_signal(std::span<char> out, std::string_view head, const SignalFields& signal) {
  const SignalText text = signal_text(head, signal);
  size_t size = 0;
  for (const std::string_view piece : text.view()) size += piece.size();
  if (out.size() < size) return {};
  char* o = out.data();
  for (const std::string_view piece : text.view()) {
    std::memcpy(o, piece.data(), piece.size());
    o += piece.size();
  }
  return {out.data(), size};
}

std::string_view write_left(std::span<char> out, std::string_view ref_raw) {
  JsonWriter w(out);
  w.raw(R"({"type":"left")");
  ref(w, ref_raw);
  return finish(w);
}

std::string_view write_pong(std::span<char> out, std::string_view t_raw, std::string_view ref_raw) {
  JsonWriter w(out);
  w.raw(R"({"type":"pong")");
  if (!t_raw.empty()) {
    w.raw(R"(,"t":)");
    w.raw(t_raw);
  }
  ref(w, ref_raw);
  return finish(w);
}

std::string_view write_policy(std::span<char> out, std::string_view policy_json) {
  JsonWriter w(out);
  w.raw(R"({"type":"policy","policy":)");
  w.raw(policy_json);
  return finish(w);
}

std::string_view write_reconnect(std::span<char> out, uint32_t after_ms) {
  JsonWriter w(out);
  w.raw(R"({"type":"reconnect","afterMs":)");
  w.unsigned_number(after_ms);
  return finish(w);
}

std::string_view write_error(std::span<char> out, const ErrorReply& r) {
  JsonWriter w(out);
  w.raw(R"({"type":"error","code":")");
  w.raw(error_code_text(r.code));
  w.raw(R"(","message":)");
  if (r.detail.empty()) {
    w.string(r.message);
  } else {
    char text[256];
    JsonWriter composed(text);
    composed.raw(r.message);
    composed.raw(": ");
    composed.raw(utf8_prefix(r.detail, 128));
    w.string(composed.ok() ? composed.text() : r.message);
  }
  ref(w, r.ref_raw);
  if (!r.to.empty()) {
    w.raw(R"(,"to":)");
    w.string(r.to);
  }
  if (r.retry_after_ms >= 0) {
    w.raw(R"(,"retryAfterMs":)");
    w.number(r.retry_after_ms);
  }
  return finish(w);
}

}  // namespace mf::edge
