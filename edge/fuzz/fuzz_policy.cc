// Fuzz target: the operator's policy document. Any bytes must give a
// document or a one-line error, never a crash. A document that parses must
// give, for every stream it names and for streams it does not, a policy whose
// written JSON is valid and reads back as the same values; parsing is
// deterministic (same version twice).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge/policy.h"

namespace {

void check_round_trip(const mf::edge::PolicyDocument& document, std::string_view stream_id) {
  mf::edge::Policy policy = document.effective(stream_id);
  char buffer[mf::edge::max_policy_json_bytes];
  size_t size = mf::edge::write_policy_json(buffer, policy);
  if (size == 0) std::abort();
  // The written object is itself a complete partial policy: as `defaults`
  // of a new document it must parse (hence be valid JSON) to equal values.
  std::string wrapped = "{\"defaults\":";
  wrapped.append(buffer, size);
  wrapped.append("}");
  auto again = mf::edge::PolicyDocument::parse(wrapped);
  if (!again || !(again->defaults() == policy)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto document = mf::edge::PolicyDocument::parse(text);
  if (!document) {
    const std::string& error = document.error();
    if (error.empty() || error.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  auto twice = mf::edge::PolicyDocument::parse(text);
  if (!twice || twice->version() != document->version()) std::abort();
  check_round_trip(*document, "");
  check_round_trip(*document, "stream-not-named");
  size_t checked = 0;
  for (const std::string& stream_id : document->stream_ids()) {
    if (!document->names_stream(stream_id)) std::abort();
    check_round_trip(*document, stream_id);
    if (++checked == 8) break;
  }
  return 0;
}
