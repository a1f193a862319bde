#include "origin/jws_compact.h"

#include <algorithm>

#include "common/base/base64url.h"
#include "common/base/json_writer.h"

namespace mf::origin {

std::string manifest_jws_header(std::string_view kid) {
  char buffer[64 + 6 * max_kid_bytes];
  JsonWriter json(buffer);
  json.raw(R"({"alg":"ES256","typ":)");
  json.string(manifest_jws_type);
  json.raw(R"(,"kid":)");
  json.string(kid.substr(0, max_kid_bytes));
  json.raw("}");
  return std::string(json.text());
}

std::string jws_signing_input(std::string_view header_json, std::string_view payload_json) {
  std::string out;
  out.reserve(base64url_encoded_size(header_json.size()) + 1 + base64url_encoded_size(payload_json.size()));
  out = base64url(header_json);
  out += '.';
  append_base64url(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(payload_json.data()), payload_json.size()),
                   out);
  return out;
}

std::string jws_compact(std::string_view signing_input, const RawP256Signature& signature) {
  std::string out;
  out.reserve(signing_input.size() + 1 + base64url_encoded_size(signature.size()) + 1);
  out = signing_input;
  out += '.';
  append_base64url(signature, out);
  out += '\n';
  return out;
}

std::expected<JwsParts, std::string> parse_jws_compact(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (std::count(text.begin(), text.end(), '.') != 2) return std::unexpected("not three dot-separated parts");
  size_t first = text.find('.');
  size_t second = text.find('.', first + 1);
  JwsParts parts;
  parts.signing_input = text.substr(0, second);
  auto header = decode_base64url(text.substr(0, first));
  auto payload = decode_base64url(text.substr(first + 1, second - first - 1));
  auto signature = decode_base64url(text.substr(second + 1));
  if (!header || !payload || !signature) return std::unexpected("a part is not canonical unpadded base64url");
  if (signature->size() != parts.signature.size())
    return std::unexpected("the signature is not the 64-byte r || s of ES256");
  parts.header_json.assign(header->begin(), header->end());
  parts.payload_json.assign(payload->begin(), payload->end());
  std::copy(signature->begin(), signature->end(), parts.signature.begin());
  return parts;
}

}  // namespace mf::origin
