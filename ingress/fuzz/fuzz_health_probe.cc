// Byte 0 is a split position; the rest, as a backend's answer to a health
// check: the verdict of HealthResponseReader must not depend on how the
// bytes are split (whole, in two pieces at the position byte 0 gives, one
// byte at a time), must agree with the status it reports, and must respect the
// status line bound. The same bytes, cut at that position into a host and a path, drive
// format_health_request, whose output must parse back (PROXY LOCAL header,
// then a request head the edge accepts). Aborts when an invariant breaks.

#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "common/codec/http_request_head.h"
#include "common/codec/proxy_protocol.h"
#include "ingress/health_probe.h"

namespace {

using namespace mf::ingress;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_consistent(const HealthResponseReader& r, size_t fed) {
  switch (r.verdict()) {
    case HealthVerdict::incomplete:
      // Undecided only while the line can still end within the bound.
      check(r.status() == 0 && fed <= max_status_line_bytes + 1);
      break;
    case HealthVerdict::healthy:
      check(r.status() >= 200 && r.status() <= 299);
      break;
    case HealthVerdict::unhealthy:
      check(r.status() >= 100 && r.status() <= 599 && (r.status() < 200 || r.status() > 299));
      break;
    case HealthVerdict::malformed:
      check(r.status() == 0);
      break;
  }
}

void check_reader(uint8_t control, std::span<const uint8_t> bytes) {
  HealthResponseReader whole;
  check(whole.feed(bytes) == whole.verdict());
  check_consistent(whole, bytes.size());

  const size_t split = control % (bytes.size() + 1);
  HealthResponseReader two;
  two.feed(bytes.first(split));
  two.feed(bytes.subspan(split));
  check(two.verdict() == whole.verdict() && two.status() == whole.status());

  HealthResponseReader bytewise;
  for (size_t i = 0; i < bytes.size() && bytewise.verdict() == HealthVerdict::incomplete; ++i) {
    bytewise.feed(bytes.subspan(i, 1));
  }
  check(bytewise.verdict() == whole.verdict() && bytewise.status() == whole.status());

  // The verdict is final.
  const HealthVerdict before = whole.verdict();
  const uint16_t status = whole.status();
  if (before != HealthVerdict::incomplete) {
    check(whole.feed(bytes) == before && whole.status() == status);
  }
}

void check_request(uint8_t control, std::span<const uint8_t> bytes) {
  const std::string_view rest(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t cut = control % (rest.size() + 1);
  const std::string_view host = rest.substr(0, cut), path = rest.substr(cut);

  std::array<uint8_t, 4096> out;
  const size_t n = format_health_request(out, host, path);
  const size_t need = health_request_fixed_bytes + host.size() + path.size();
  if (n == 0) return;
  check(n == need && n <= out.size());
  const auto header = mf::proxy::parse(std::span<const uint8_t>(out.data(), n));
  check(header.has_value() && header->command == mf::proxy::Command::local &&
        header->length == mf::proxy::fixed_header_bytes);
  const std::string_view http(reinterpret_cast<const char*>(out.data()) + header->length,
                              n - header->length);
  check(mf::http::find_head_end(http) == http.size());
  const auto head = mf::http::parse_request_head(http);
  check(head.has_value() && head->method == "GET" && head->target == path &&
        head->header("Host") == host && head->header_has_token("Connection", "close"));
  // One byte less of room is refused.
  check(format_health_request(std::span<uint8_t>(out.data(), n - 1), host, path) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> bytes(data + 1, size - 1);
  check_reader(data[0], bytes);
  check_request(data[0], bytes);
  return 0;
}
