#include "common/codec/websocket_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace mf::ws {
namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kOpcodeBits = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLen7Bits = 0x7F;
constexpr uint8_t kLen16 = 126;
constexpr uint8_t kLen64 = 127;

constexpr size_t length_field_end(uint8_t byte1) {
  const uint8_t len7 = byte1 & kLen7Bits;
  return 2 + (len7 == kLen16 ? 2 : len7 == kLen64 ? 8 : 0);
}

// The payload length announced by a header whose length field is complete.
uint64_t announced_length(const uint8_t* header) {
  const uint8_t len7 = header[1] & kLen7Bits;
  if (len7 < kLen16) return len7;
  const size_t bytes = len7 == kLen16 ? 2 : 8;
  uint64_t length = 0;
  for (size_t i = 0; i < bytes; ++i) length = (length << 8) | header[2 + i];
  return length;
}

constexpr bool is_known_opcode(uint8_t op) {
  return op <= 2 || (op >= 8 && op <= 10);
}

// Close codes a peer may send (RFC 6455 7.4 and the IANA registry): 1004,
// 1005, 1006 and 1015 are reserved, 1016..2999 unassigned, 3000..4999 for
// libraries and applications.
constexpr bool is_wire_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }

}  // namespace

size_t Decoder::consume_header(const uint8_t* in, size_t n, Fault& fault) {
  if (buffered_ == 0 && n >= 2) {  // common case: the whole header is in `in`
    const size_t length_end = length_field_end(in[1]);
    const size_t header_end = length_end + (role_ == Role::server ? 4 : 0);
    if (n >= header_end) {
      fault = check_first_two_bytes(in);
      if (fault.code == 0) fault = check_length(in);
      if (fault.code != 0) return header_end;
      start_payload(in);
      return header_end;
    }
  }

  size_t used = 0;
  // Appends input up to `target` header bytes; true when they are all there.
  const auto fill_to = [&](size_t target) {
    const size_t take = std::min(target - buffered_, n - used);
    std::memcpy(buffer_ + buffered_, in + used, take);
    buffered_ = static_cast<uint8_t>(buffered_ + take);
    used += take;
    return buffered_ == target;
  };
  if (buffered_ < 2) {
    if (!fill_to(2)) return used;
    fault = check_first_two_bytes(buffer_);
    if (fault.code != 0) return used;
    if (length_field_end(buffer_[1]) == 2) {
      fault = check_length(buffer_);
      if (fault.code != 0) return used;
    }
  }
  const size_t length_end = length_field_end(buffer_[1]);
  if (buffered_ < length_end) {
    if (!fill_to(length_end)) return used;
    fault = check_length(buffer_);
    if (fault.code != 0) return used;
  }
  const size_t header_end = length_end + (role_ == Role::server ? 4 : 0);
  if (buffered_ < header_end && !fill_to(header_end)) return used;
  start_payload(buffer_);
  return used;
}

Decoder::Fault Decoder::check_first_two_bytes(const uint8_t* header) const {
  const uint8_t b0 = header[0];
  const uint8_t b1 = header[1];
  const uint8_t op = b0 & kOpcodeBits;
  if ((b0 & kRsvBits) != 0) return {close_code::protocol_error, "reserved bit set"};
  if (!is_known_opcode(op)) return {close_code::protocol_error, "unknown opcode"};
  const bool masked = (b1 & kMaskBit) != 0;
  if (role_ == Role::server && !masked) {
    return {close_code::protocol_error, "client frame not masked"};
  }
  if (role_ == Role::client && masked) {
    return {close_code::protocol_error, "server frame masked"};
  }
  const uint8_t len7 = b1 & kLen7Bits;
  switch (static_cast<Opcode>(op)) {
    case Opcode::close:
      if (len7 == 1) return {close_code::protocol_error, "close payload of 1 byte"};
      [[fallthrough]];
    case Opcode::ping:
    case Opcode::pong:
      if ((b0 & kFin) == 0) return {close_code::protocol_error, "fragmented control frame"};
      if (len7 > kMaxControlPayload) {
        return {close_code::protocol_error, "control payload over 125 bytes"};
      }
      return {};
    case Opcode::continuation:
      if (message_ == Message::none) {
        return {close_code::protocol_error, "continuation without a message"};
      }
      return {};
    case Opcode::binary:
    case Opcode::text:
      if (message_ != Message::none) {
        return {close_code::protocol_error, "new message inside a fragmented message"};
      }
      if (static_cast<Opcode>(op) == Opcode::binary && !config_->accept_binary) {
        return {close_code::unsupported_data, "binary messages not accepted"};
      }
      return {};
  }
  __builtin_unreachable();  // is_known_opcode() admitted only the cases above
}

Decoder::Fault Decoder::check_length(const uint8_t* header) const {
  const uint64_t length = announced_length(header);
  if (length >> 63) return {close_code::protocol_error, "64-bit length with MSB set"};
  const auto op = static_cast<Opcode>(header[0] & kOpcodeBits);
  if (is_control(op)) return {};  // bounded to 125 by check_first_two_bytes()
  const uint32_t so_far = op == Opcode::continuation ? message_bytes_ : 0;
  if (length > config_->max_message_bytes - so_far) {
    return {close_code::message_too_big, "message too big"};
  }
  return {};
}

void Decoder::start_payload(const uint8_t* header) {
  const size_t length_end = length_field_end(header[1]);
  if (role_ == Role::server) std::memcpy(mask_, header + length_end, 4);
  opcode_ = static_cast<Opcode>(header[0] & kOpcodeBits);
  fin_ = (header[0] & kFin) != 0;
  // check_length() bounded the length by max_message_bytes or 125.
  remaining_ = static_cast<uint32_t>(announced_length(header));
  mask_phase_ = 0;
  buffered_ = 0;
  if (opcode_ == Opcode::text || opcode_ == Opcode::binary) {
    message_ = opcode_ == Opcode::text ? Message::text : Message::binary;
    message_bytes_ = 0;
    first_pending_ = true;
    utf8_.reset();
  }
  if (!is_control(opcode_)) message_bytes_ += remaining_;
  phase_ = Phase::payload;
}

Decoder::Fault Decoder::parse_close(std::span<const uint8_t> payload, uint16_t& code,
                                    std::string_view& reason) {
  if (payload.empty()) {
    code = close_code::no_status;
    reason = {};
    return {};
  }
  if (payload.size() < 2) return {close_code::protocol_error, "close payload of 1 byte"};
  code = static_cast<uint16_t>((payload[0] << 8) | payload[1]);
  if (!is_wire_close_code(code)) {
    return {close_code::protocol_error, "close code not allowed"};
  }
  const auto text = payload.subspan(2);
  if (!is_valid_utf8(text)) return {close_code::invalid_payload, "invalid UTF-8 in close reason"};
  reason = {reinterpret_cast<const char*>(text.data()), text.size()};
  return {};
}

uint8_t apply_mask(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t key[4],
                   uint8_t phase) {
  // The key rotated so that byte i of the run lines up with byte i % 8 of
  // `k` (little-endian: byte j of a word is bits 8j..8j+7).
  uint32_t key_word;
  std::memcpy(&key_word, key, sizeof key_word);
  if constexpr (std::endian::native == std::endian::little) {
    key_word = std::rotr(key_word, 8 * (phase & 3));
  } else {
    key_word = std::rotl(key_word, 8 * (phase & 3));
  }
  const uint64_t k = uint64_t{key_word} << 32 | key_word;
  // 32 bytes per step as one vector where the target has one (AVX2: one
  // load, xor and store), else the compiler's split of it.
  using Words = uint64_t __attribute__((vector_size(32)));
  const Words k4 = {k, k, k, k};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    Words v;
    std::memcpy(&v, src + i, sizeof v);
    v ^= k4;
    std::memcpy(dst + i, &v, sizeof v);
  }
  for (; i + 8 <= n; i += 8) store_u64(dst + i, load_u64(src + i) ^ k);
  uint8_t rotated[8];
  std::memcpy(rotated, &k, sizeof rotated);
  for (; i < n; ++i) dst[i] = src[i] ^ rotated[i & 7];
  return static_cast<uint8_t>((phase + n) & 3);
}

void mask_copy(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t key[4]) {
  apply_mask(dst, src, n, key, 0);
}

size_t encode_header(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                     const uint8_t* mask_key) {
  out[0] = static_cast<uint8_t>((fin ? kFin : 0) | static_cast<uint8_t>(op));
  const uint8_t mask_bit = mask_key != nullptr ? kMaskBit : 0;
  size_t size;
  if (payload_len < kLen16) {
    out[1] = static_cast<uint8_t>(mask_bit | payload_len);
    size = 2;
  } else if (payload_len <= 0xFFFF) {
    out[1] = mask_bit | kLen16;
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    size = 4;
  } else {
    out[1] = mask_bit | kLen64;
    for (size_t i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
    size = 10;
  }
  if (mask_key != nullptr) {
    std::memcpy(out + size, mask_key, 4);
    size += 4;
  }
  return size;
}

size_t encode_close_payload(uint8_t* out, uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) return 0;
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code);
  constexpr size_t kMaxReason = 125 - 2;
  size_t keep = reason.size();
  if (keep > kMaxReason) {
    keep = kMaxReason;
    // Back up to the start of the character that straddles the cut.
    while (keep > 0 && (static_cast<uint8_t>(reason[keep]) & 0xC0) == 0x80) --keep;
  }
  if (keep > 0) std::memcpy(out + 2, reason.data(), keep);
  return 2 + keep;
}

size_t encode_frame(std::span<uint8_t> out, Opcode op, bool fin,
                    std::span<const uint8_t> payload, const uint8_t* mask_key) {
  const size_t n = payload.size();
  const size_t header_size = header_bytes(n, mask_key != nullptr);
  if (out.size() < header_size || out.size() - header_size < n) return 0;
  encode_header(out.data(), op, fin, n, mask_key);
  if (mask_key != nullptr) {
    mask_copy(out.data() + header_size, payload.data(), n, mask_key);
  } else if (n != 0) {
    std::memcpy(out.data() + header_size, payload.data(), n);
  }
  return header_size + n;
}

}  // namespace mf::ws
