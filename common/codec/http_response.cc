#include "common/codec/http_response.h"

#include <cstring>

namespace mf::http {
namespace {

// Appends into a fixed buffer; once anything does not fit, the whole
// message is void (size() is 0), so callers never send a truncated head.
class Writer {
 public:
  explicit Writer(std::span<char> out) : out_(out) {}

  Writer& operator<<(std::string_view s) {
    if (s.size() > out_.size() - used_) {
      overflowed_ = true;
    } else if (!overflowed_ && !s.empty()) {
      std::memcpy(out_.data() + used_, s.data(), s.size());
      used_ += s.size();
    }
    return *this;
  }

  Writer& operator<<(size_t n) {
    char digits[20];
    size_t i = sizeof digits;
    do {
      digits[--i] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    return *this << std::string_view(digits + i, sizeof digits - i);
  }

  size_t size() const { return overflowed_ ? 0 : used_; }

 private:
  std::span<char> out_;
  size_t used_ = 0;
  bool overflowed_ = false;
};

// Visible ASCII only (optionally SP and HTAB too): what can go into a
// request line or field value without changing the message's framing.
bool is_visible(std::string_view s, bool allow_space) {
  for (char c : s) {
    const bool space = c == ' ' || c == '\t';
    if (!(c > 0x20 && c < 0x7F) && !(allow_space && space)) return false;
  }
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::expected<void, RequestError> parse_into(std::string_view s, ResponseHead& head) {
  // "HTTP/1.1 101" then " reason" (optional, ignored) and CRLF.
  if (s.size() < 12 || !s.starts_with("HTTP/") || !is_digit(s[5]) || s[6] != '.' ||
      !is_digit(s[7]) || s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
      !is_digit(s[11]) || s[9] < '1' || s[9] > '5') {
    return std::unexpected(RequestError::malformed);
  }
  if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) {
    return std::unexpected(RequestError::unsupported_version);
  }
  head.version_minor = static_cast<uint8_t>(s[7] - '0');
  head.status = static_cast<uint16_t>((s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));

  size_t pos = 12;
  if (pos < s.size() && s[pos] == ' ') {
    ++pos;
    while (pos < s.size() && s[pos] != '\r' &&
           (s[pos] == '\t' || static_cast<unsigned char>(s[pos]) >= 0x20) && s[pos] != 0x7F) {
      ++pos;
    }
  }
  if (pos + 1 >= s.size() || s[pos] != '\r' || s[pos + 1] != '\n') {
    return std::unexpected(RequestError::malformed);
  }
  auto count = parse_header_fields(s.substr(pos + 2), head.headers);
  if (!count) return std::unexpected(count.error());
  head.header_count = static_cast<uint8_t>(*count);
  return {};
}

}  // namespace

std::string_view status_text(uint16_t status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return {};
  }
}

size_t format_switching_protocols(std::span<char> out, const std::array<char, 28>& accept,
                                  std::string_view subprotocol) {
  if (!subprotocol.empty() && !is_token(subprotocol)) return 0;
  Writer w(out);
  w << "HTTP/1.1 101 Switching Protocols\r\n"
       "Upgrade: websocket\r\n"
       "Connection: Upgrade\r\n"
       "Sec-WebSocket-Accept: "
    << std::string_view(accept.data(), accept.size()) << "\r\n";
  if (!subprotocol.empty()) w << "Sec-WebSocket-Protocol: " << subprotocol << "\r\n";
  w << "\r\n";
  return w.size();
}

size_t format_response(std::span<char> out, uint16_t status, std::string_view body,
                       std::string_view extra_header_lines, bool head_only) {
  if (status < 100 || status > 599) return 0;
  Writer w(out);
  w << "HTTP/1.1 " << size_t{status} << " " << status_text(status)
    << "\r\n"
       "Connection: close\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: "
    << body.size() << "\r\n"
    << extra_header_lines << "\r\n";
  if (!head_only) w << body;
  return w.size();
}

std::string_view upgrade_rejection_headers(const UpgradeDecision& decision) {
  switch (decision.rejection_headers) {
    case RejectionHeaders::none: return {};
    case RejectionHeaders::allow_get: return "Allow: GET\r\n";
    case RejectionHeaders::allow_get_head: return "Allow: GET, HEAD\r\n";
    case RejectionHeaders::upgrade_websocket: return "Upgrade: websocket\r\n";
    case RejectionHeaders::websocket_version:
      return "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  }
  return {};
}

size_t format_upgrade_request(std::span<char> out, std::string_view host,
                              std::string_view target, std::string_view key_base64,
                              std::string_view subprotocol) {
  if (host.empty() || key_base64.empty() || !target.starts_with('/') ||
      !is_visible(host, false) || !is_visible(target, false) ||
      !is_visible(key_base64, false) || !is_visible(subprotocol, true)) {
    return 0;
  }
  Writer w(out);
  w << "GET " << target << " HTTP/1.1\r\nHost: " << host
    << "\r\n"
       "Upgrade: websocket\r\n"
       "Connection: Upgrade\r\n"
       "Sec-WebSocket-Key: "
    << key_base64
    << "\r\n"
       "Sec-WebSocket-Version: 13\r\n";
  if (!subprotocol.empty()) w << "Sec-WebSocket-Protocol: " << subprotocol << "\r\n";
  w << "\r\n";
  return w.size();
}

std::expected<ResponseHead, RequestError> parse_response_head(std::string_view head) {
  std::expected<ResponseHead, RequestError> result{std::in_place};
  if (auto ok = parse_into(head, *result); !ok) result = std::unexpected(ok.error());
  return result;
}

bool is_valid_upgrade_response(const ResponseHead& head, std::string_view client_key,
                               std::string_view expected_subprotocol) {
  const auto fields = head.fields();
  if (head.status != 101 || !headers_have_token(fields, "Upgrade", "websocket") ||
      !headers_have_token(fields, "Connection", "upgrade")) {
    return false;
  }
  const std::array<char, 28> expected_accept = websocket_accept_key(client_key);
  if (count_headers(fields, "Sec-WebSocket-Accept") != 1 ||
      head.header("Sec-WebSocket-Accept") !=
          std::string_view(expected_accept.data(), expected_accept.size())) {
    return false;
  }
  if (expected_subprotocol.empty()) {
    if (count_headers(fields, "Sec-WebSocket-Protocol") != 0) return false;
  } else if (count_headers(fields, "Sec-WebSocket-Protocol") != 1 ||
             head.header("Sec-WebSocket-Protocol") != expected_subprotocol) {
    return false;
  }
  return count_headers(fields, "Sec-WebSocket-Extensions") == 0;
}

std::string format_document_response(uint16_t status, std::string_view content_type, std::string_view body,
                                     bool head_only, std::string_view extra_header_lines) {
  std::string text = status_text(status).empty() ? std::string("Status") : std::string(status_text(status));
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + text + "\r\nConnection: close\r\nContent-Type: ";
  response += content_type;
  response += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  response += extra_header_lines;
  response += "\r\n";
  if (!head_only) response += body;
  return response;
}

}  // namespace mf::http
