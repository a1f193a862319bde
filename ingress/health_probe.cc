#include "ingress/health_probe.h"

#include <algorithm>
#include <cstring>

#include "common/codec/http_response.h"

namespace mf::ingress {
namespace {

// What a request line or field value can carry without changing the
// message's framing, and without any quoting question: visible ASCII.
bool is_visible_ascii(std::string_view s) {
  return std::ranges::all_of(s, [](char c) { return c > 0x20 && c < 0x7F; });
}

// Every valid status line starts with this; a byte that differs from it is
// malformed at once (parse_response_head would refuse the line anyway).
constexpr std::string_view status_line_prefix = "HTTP/1.";

}  // namespace

size_t format_health_request(std::span<uint8_t> out, std::string_view host_header,
                             std::string_view path) {
  namespace text = health_request_text;
  // A fragment is never sent: the edge refuses a target holding '#'.
  if (host_header.empty() || !path.starts_with('/') || path.contains('#') ||
      !is_visible_ascii(host_header) || !is_visible_ascii(path)) {
    return 0;
  }
  const size_t size = health_request_fixed_bytes + path.size() + host_header.size();
  if (out.size() < size) return 0;
  size_t at = proxy::encode_local(out);
  for (std::string_view part : {text::before_path, path, text::before_host, host_header, text::after_host}) {
    std::memcpy(out.data() + at, part.data(), part.size());
    at += part.size();
  }
  return at;
}

HealthVerdict HealthResponseReader::feed(std::span<const uint8_t> bytes) {
  for (const uint8_t byte : bytes) {
    if (verdict_ != HealthVerdict::incomplete) break;
    const char c = static_cast<char>(byte);
    if (size_ > 0 && line_[size_ - 1] == '\r') {
      if (c != '\n') {
        verdict_ = HealthVerdict::malformed;
      } else {
        line_[size_++] = '\n';
        finish();
      }
    } else if (c == '\n' || (size_ < status_line_prefix.size() && c != status_line_prefix[size_]) ||
               (c != '\r' && size_ == max_status_line_bytes)) {
      verdict_ = HealthVerdict::malformed;
    } else {
      line_[size_++] = c;
    }
  }
  return verdict_;
}

// The status line with its CRLF is in line_: parse it as a head without
// fields, so the grammar is exactly the one the load generator checks.
void HealthResponseReader::finish() {
  line_[size_++] = '\r';
  line_[size_++] = '\n';
  const auto head = http::parse_response_head(std::string_view(line_.data(), size_));
  if (!head) {
    verdict_ = HealthVerdict::malformed;
    return;
  }
  status_ = head->status;
  verdict_ = status_ >= 200 && status_ <= 299 ? HealthVerdict::healthy : HealthVerdict::unhealthy;
}

}  // namespace mf::ingress
