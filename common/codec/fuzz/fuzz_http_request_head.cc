// Arbitrary bytes as a request head: parse, decide, format the answer, and
// parse that answer back as the client would. Aborts when an invariant of
// the parser, the decision or the formatter breaks.

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/codec/http_request_head.h"
#include "common/codec/http_response.h"
#include "common/codec/websocket_upgrade.h"

namespace {

using namespace mf::http;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Input {
  std::string_view bytes;
  bool contains(std::string_view v) const {
    return v.empty() ||
           (v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size());
  }
};

bool has_no_line_break_or_nul(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void check_fields(const Input& in, std::span<const Header> fields) {
  for (const Header& h : fields) {
    check(in.contains(h.name) && in.contains(h.value));
    check(is_token(h.name));
    check(has_no_line_break_or_nul(h.value));
    check(h.value.empty() || (h.value.front() != ' ' && h.value.front() != '\t' &&
                              h.value.back() != ' ' && h.value.back() != '\t'));
  }
}

void check_find_head_end(std::string_view bytes) {
  const size_t end = find_head_end(bytes);
  if (end == 0) {
    check(bytes.find("\r\n\r\n") == std::string_view::npos);
  } else {
    check(end >= 4 && end <= bytes.size() && bytes.substr(end - 4, 4) == "\r\n\r\n");
    check(bytes.substr(0, end - 1).find("\r\n\r\n") == std::string_view::npos);
  }
}

void check_request(const Input& in, const RequestHead& head) {
  check(in.contains(head.method) && in.contains(head.target) && in.contains(head.path) &&
        in.contains(head.query));
  check(is_token(head.method));
  check(head.target.starts_with('/') && head.path.starts_with('/'));
  check(head.path.find('?') == std::string_view::npos);
  check(head.target == head.path ||
        (head.target.size() == head.path.size() + 1 + head.query.size() &&
         head.target.starts_with(head.path) && head.target[head.path.size()] == '?' &&
         head.target.ends_with(head.query)));
  check(head.version_minor <= 1);
  check(head.header_count <= max_request_headers);
  check_fields(in, head.fields());
  // The only blank line of a valid head is its last line.
  check(find_head_end(in.bytes) == in.bytes.size());
  for (std::string_view key : {"stream", "token"}) {
    if (auto v = query_param(head.query, key)) check(in.contains(*v));
  }
}

void check_decision(const RequestHead& head, const UpgradeDecision& d) {
  check(!d.reason.empty());
  switch (d.kind) {
    case RequestKind::websocket: {
      check(d.status == 101);
      const auto key = head.header("Sec-WebSocket-Key");
      check(key && is_valid_websocket_key(*key));
      check(d.accept == websocket_accept_key(*key));
      check(head.method == "GET" && head.version_minor == 1);
      break;
    }
    case RequestKind::health:
      check(d.status == 200 && !d.select_subprotocol);
      break;
    case RequestKind::rejected:
      check(d.status == 400 || d.status == 404 || d.status == 405 || d.status == 426 ||
            d.status == 431);
      check(!d.select_subprotocol);
      check((d.status == 405) == (d.rejection_headers == RejectionHeaders::allow_get ||
                                  d.rejection_headers == RejectionHeaders::allow_get_head));
      check((d.status == 426) == (d.rejection_headers == RejectionHeaders::upgrade_websocket ||
                                  d.rejection_headers == RejectionHeaders::websocket_version));
      break;
  }
}

// Formats the edge's answer and parses it back as the load generator would.
void check_response(const RequestHead* head, const UpgradeDecision& d, bool head_only) {
  static constexpr std::string_view subprotocol = "meshedflow.v1";
  std::array<char, 1024> out;
  size_t n = 0;
  if (d.kind == RequestKind::websocket) {
    n = format_switching_protocols(out, d.accept, d.select_subprotocol ? subprotocol : "");
  } else {
    n = format_response(out, d.status, d.reason, upgrade_rejection_headers(d), head_only);
  }
  check(n > 0 && n <= out.size());
  const std::string_view text(out.data(), n);
  const size_t end = find_head_end(text);
  check(end > 0 && (head_only || d.kind == RequestKind::websocket ? end == n
                                                                   : text.substr(end) == d.reason));
  auto parsed = parse_response_head(text.substr(0, end));
  check(parsed.has_value() && parsed->status == d.status);
  if (d.kind == RequestKind::websocket) {
    check(is_valid_upgrade_response(*parsed, *head->header("Sec-WebSocket-Key"),
                                    d.select_subprotocol ? subprotocol : ""));
  } else {
    check(parsed->header("Connection") == "close");
    check(!is_valid_upgrade_response(*parsed, "dGhlIHNhbXBsZSBub25jZQ==", ""));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input in{std::string_view(reinterpret_cast<const char*>(data), size)};
  check_find_head_end(in.bytes);

  if (auto head = parse_request_head(in.bytes)) {
    check_request(in, *head);
    const UpgradeDecision d = decide_upgrade(*head, UpgradeRoutes{});
    check_decision(*head, d);
    check_response(&*head, d, head->method == "HEAD");
  } else {
    const UpgradeDecision d = rejection_for(head.error());
    check(d.kind == RequestKind::rejected && (d.status == 400 || d.status == 431));
    check_response(nullptr, d, false);
  }

  // The same bytes as a server's answer, as the load generator parses them.
  if (auto response = parse_response_head(in.bytes)) {
    check(response->status >= 100 && response->status <= 599);
    check(response->header_count <= max_response_headers);
    check_fields(in, response->fields());
    (void)is_valid_upgrade_response(*response, "dGhlIHNhbXBsZSBub25jZQ==", "meshedflow.v1");
  }
  return 0;
}
