#include "origin/ecdsa_signature.h"

#include <algorithm>

namespace mf::origin {
namespace {

// One DER INTEGER at `der[*position]`, written right-aligned into 32 bytes.
std::expected<void, std::string> read_integer(std::span<const uint8_t> der, size_t& position, uint8_t* out32) {
  if (der.size() - position < 2 || der[position] != 0x02) return std::unexpected("expected an INTEGER");
  size_t length = der[position + 1];
  position += 2;
  if (length == 0 || length > 33 || der.size() - position < length)
    return std::unexpected("INTEGER length out of range");
  const uint8_t* value = der.data() + position;
  position += length;
  if (value[0] & 0x80) return std::unexpected("negative INTEGER");
  if (length > 1 && value[0] == 0 && !(value[1] & 0x80)) return std::unexpected("INTEGER not minimally encoded");
  if (length == 33) {
    if (value[0] != 0) return std::unexpected("INTEGER above 2^256");
    ++value;
    --length;
  }
  std::fill(out32, out32 + 32, uint8_t{0});
  std::copy(value, value + length, out32 + 32 - length);
  if (std::all_of(out32, out32 + 32, [](uint8_t b) { return b == 0; })) return std::unexpected("zero INTEGER");
  return {};
}

void append_integer(const uint8_t* value32, std::vector<uint8_t>& out) {
  size_t skip = 0;
  while (skip < 31 && value32[skip] == 0) ++skip;
  bool pad = value32[skip] & 0x80;
  out.push_back(0x02);
  out.push_back(static_cast<uint8_t>(32 - skip + (pad ? 1 : 0)));
  if (pad) out.push_back(0);
  out.insert(out.end(), value32 + skip, value32 + 32);
}

}  // namespace

std::expected<RawP256Signature, std::string> der_to_raw_p256(std::span<const uint8_t> der) {
  // SEQUENCE of two INTEGERs of at most 33 bytes each: at most 70 content bytes,
  // so the length is always in short form.
  if (der.size() < 2 || der[0] != 0x30) return std::unexpected("not a DER SEQUENCE");
  if (der[1] & 0x80) return std::unexpected("SEQUENCE length not in short form");
  if (size_t{der[1]} != der.size() - 2) return std::unexpected("SEQUENCE length does not match the signature's size");
  RawP256Signature raw{};
  size_t position = 2;
  if (auto ok = read_integer(der, position, raw.data()); !ok) return std::unexpected("r: " + ok.error());
  if (auto ok = read_integer(der, position, raw.data() + 32); !ok) return std::unexpected("s: " + ok.error());
  if (position != der.size()) return std::unexpected("bytes after s");
  return raw;
}

std::vector<uint8_t> raw_to_der_p256(const RawP256Signature& raw) {
  std::vector<uint8_t> out{0x30, 0};
  append_integer(raw.data(), out);
  append_integer(raw.data() + 32, out);
  out[1] = static_cast<uint8_t>(out.size() - 2);
  return out;
}

}  // namespace mf::origin
