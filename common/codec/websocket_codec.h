#pragma once

// RFC 6455 WebSocket framing: a pure, allocation-free decoder (bytes in,
// handler callbacks out) and frame encoders. No extension is ever negotiated,
// so every RSV bit is a protocol error.
//
// Frame header layout (RFC 6455 section 5.2), network byte order:
//
//   byte 0   bit 7 FIN | bits 6..4 RSV1..RSV3 | bits 3..0 opcode
//   byte 1   bit 7 MASK | bits 6..0 len7
//   len7 0..125 is the payload length; 126: a 16-bit length follows;
//   127: a 64-bit length follows whose most significant bit must be 0.
//   Then, if MASK is set, a 4-byte masking key. Payload byte i is sent
//   XORed with key[i % 4]. Clients mask every frame, servers none.
//
// So a header is 2..14 bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "common/codec/utf8_validator.h"

namespace mf::ws {

enum class Opcode : uint8_t {
  continuation = 0,
  text = 1,
  binary = 2,
  close = 8,
  ping = 9,
  pong = 10,
};

namespace close_code {
inline constexpr uint16_t normal = 1000;
inline constexpr uint16_t going_away = 1001;
inline constexpr uint16_t protocol_error = 1002;
inline constexpr uint16_t unsupported_data = 1003;
inline constexpr uint16_t no_status = 1005;  // never on the wire
inline constexpr uint16_t invalid_payload = 1007;
inline constexpr uint16_t policy_violation = 1008;
inline constexpr uint16_t message_too_big = 1009;
inline constexpr uint16_t internal_error = 1011;
}  // namespace close_code

// Which side of the connection this decoder reads for. server: it decodes
// frames sent by a client, which MUST be masked. client: it decodes frames
// sent by a server, which MUST NOT be masked.
enum class Role : uint8_t { server, client };

// Shared by all connections of a shard; must outlive every Decoder using it.
struct DecoderConfig {
  // Limit on a data message's payload, summed over its fragments.
  uint32_t max_message_bytes = 16 * 1024;
  // When false, a binary message is refused with 1003 at its frame header.
  bool accept_binary = false;
  // When false, text is delivered unchecked: the handler validates each
  // message's UTF-8 itself, in a walk it makes anyway (a parser that checks
  // every byte), and closes with 1007 when it is not.
  bool check_text_utf8 = true;
};

// Incremental frame decoder for one connection.
//
// feed() unmasks payload in place in the caller's buffer and reports, in
// stream order, to a Handler with these members:
//
//   void on_message_data(std::span<const uint8_t> chunk, bool is_text,
//                        bool first, bool last);
//       Payload of a data message, unmasked, in order. `first` marks the
//       first chunk of a message, `last` that the message is complete. A
//       single-frame message wholly inside one feed() is one call with
//       first && last whose chunk points into the caller's buffer; otherwise
//       a message comes as several chunks for the caller to reassemble. An
//       empty message is one call with an empty chunk. Text chunks are always
//       a valid UTF-8 prefix, and complete UTF-8 when `last`.
//   void on_ping(std::span<const uint8_t> payload);
//   void on_pong(std::span<const uint8_t> payload);
//       Whole control payloads (0..125 bytes), possibly between fragments.
//   void on_close(uint16_t code, std::string_view reason);
//       A valid close frame; code 1005 when it has no payload. The decoder
//       then ignores further input.
//   void on_error(uint16_t close_code, std::string_view why);
//       A protocol violation: 1002 (RFC 6455), 1003 (binary refused),
//       1007 (invalid UTF-8 in text or close reason), 1009 (message larger
//       than max_message_bytes, reported at the frame header that announces
//       it). The decoder is then failed and ignores further input.
//   void on_frame_complete();   (optional)
//       The last payload byte of a data frame arrived; called before the
//       on_message_data that carries it. Control frames are complete when
//       their callback comes.
//
// Spans passed to the handler are valid only during the callback. A handler
// may call halt() from a callback; feed() then returns at once.
class Decoder {
 public:
  Decoder(Role role, const DecoderConfig* config) : config_(config), role_(role) {}
  // Another configuration, before the first frame (one chosen at the
  // upgrade); it must outlive the decoder as well.
  void set_config(const DecoderConfig* config) { config_ = config; }

  template <class Handler>
  void feed(std::span<uint8_t> bytes, Handler& h);

  // The owner stops decoding (e.g. it is closing the connection); later
  // feed() calls do nothing. Does not clear failed().
  void halt() {
    if (phase_ != Phase::failed) phase_ = Phase::halted;
  }
  bool failed() const { return phase_ == Phase::failed; }
  // True while a data message has started but its final fragment has not
  // been fully received.
  bool in_message() const { return message_ != Message::none; }

 private:
  enum class Phase : uint8_t { header, payload, closed, halted, failed };
  enum class Message : uint8_t { none, text, binary };
  struct Fault {
    uint16_t code = 0;  // 0: no fault
    std::string_view why;
  };

  static constexpr size_t kMaxControlPayload = 125;

  // Reads header bytes from `in` (buffering them when the header is split),
  // checking each part as soon as it is complete; on the whole header,
  // enters Phase::payload. Returns the number of bytes consumed.
  size_t consume_header(const uint8_t* in, size_t n, Fault& fault);
  // These take the header's first bytes: 2, the length field, all of it.
  Fault check_first_two_bytes(const uint8_t* header) const;
  Fault check_length(const uint8_t* header) const;
  void start_payload(const uint8_t* header);
  static Fault parse_close(std::span<const uint8_t> payload, uint16_t& code,
                           std::string_view& reason);

  template <class Handler>
  void fail(Handler& h, const Fault& f) {
    phase_ = Phase::failed;
    h.on_error(f.code, f.why);
  }
  template <class Handler>
  void deliver_control(std::span<const uint8_t> payload, Handler& h);

  const DecoderConfig* config_;
  uint32_t remaining_ = 0;      // payload bytes of the current frame not yet read
  uint32_t message_bytes_ = 0;  // announced payload of the current message
  uint8_t mask_[4] = {};
  // The partial frame header while Phase::header, then a control payload
  // split across feed() calls; never both at once.
  uint8_t buffer_[kMaxControlPayload];
  uint8_t buffered_ = 0;
  uint8_t mask_phase_ = 0;  // index into mask_ of the next payload byte
  Role role_;
  Phase phase_ = Phase::header;
  Opcode opcode_ = Opcode::continuation;  // of the current frame
  bool fin_ = false;                      // of the current frame
  Message message_ = Message::none;
  bool first_pending_ = false;  // the current message has delivered nothing yet
  Utf8Validator utf8_;
};

inline constexpr size_t max_header_bytes = 14;

// XORs n bytes with the 4-byte key, starting at key index `phase`; returns
// the key index for the byte after them. dst may equal src.
uint8_t apply_mask(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t key[4],
                   uint8_t phase);

// The size of the header encode_header() writes for a payload of
// `payload_len` bytes: 2, plus 2 or 8 for the length, plus 4 when masked.
inline size_t header_bytes(uint64_t payload_len, bool masked) {
  return 2 + (payload_len < 126 ? 0 : payload_len <= 0xFFFF ? 2 : 8) + (masked ? 4 : 0);
}

// Writes a frame header with the minimal length encoding and returns its size
// (2..14). mask_key nullptr: server frame, unmasked; else the frame is marked
// masked and carries the key (the payload must then be masked by the caller,
// see mask_copy). out must hold max_header_bytes.
size_t encode_header(uint8_t* out, Opcode op, bool fin, uint64_t payload_len,
                     const uint8_t* mask_key);

// Copies n bytes from src to dst masked with key (client side). dst may equal
// src; otherwise they must not overlap.
void mask_copy(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t key[4]);

// Writes a close payload (big-endian code, then the reason truncated to fit
// 125 bytes, cut on a UTF-8 character boundary) and returns its size.
// no_status (1005) must not appear on the wire: it yields an empty payload.
// out must hold 125 bytes; reason should be valid UTF-8.
size_t encode_close_payload(uint8_t* out, uint16_t code, std::string_view reason);

// Writes header and payload (masked when mask_key is not nullptr) and returns
// the frame size, or 0 when out is too small. payload must not overlap out.
size_t encode_frame(std::span<uint8_t> out, Opcode op, bool fin,
                    std::span<const uint8_t> payload, const uint8_t* mask_key);

// ---------------------------------------------------------------------------

inline bool is_control(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

template <class Handler>
void Decoder::feed(std::span<uint8_t> bytes, Handler& h) {
  uint8_t* p = bytes.data();
  uint8_t* const end = p + bytes.size();
  // Every state change happens before the callback that reports it, so that
  // a halt() from inside the callback is final.
  while (phase_ == Phase::header || phase_ == Phase::payload) {
    if (phase_ == Phase::header) {
      if (p == end) return;
      Fault fault;
      p += consume_header(p, static_cast<size_t>(end - p), fault);
      if (fault.code != 0) return fail(h, fault);
      if (phase_ == Phase::header) return;  // header incomplete
    }
    const size_t avail = static_cast<size_t>(end - p);
    const bool masked = role_ == Role::server;

    if (is_control(opcode_)) {
      std::span<const uint8_t> payload;
      if (buffered_ == 0 && remaining_ <= avail) {  // whole: deliver in place
        if (masked) apply_mask(p, p, remaining_, mask_, 0);
        payload = {p, remaining_};
        p += remaining_;
      } else {  // split across feed() calls: collect in buffer_
        const size_t n = remaining_ < avail ? remaining_ : avail;
        if (masked) {
          mask_phase_ = apply_mask(buffer_ + buffered_, p, n, mask_, mask_phase_);
        } else if (n != 0) {
          std::memcpy(buffer_ + buffered_, p, n);
        }
        buffered_ = static_cast<uint8_t>(buffered_ + n);
        remaining_ -= static_cast<uint32_t>(n);
        p += n;
        if (remaining_ != 0) return;
        payload = {buffer_, buffered_};
      }
      remaining_ = 0;
      buffered_ = 0;
      phase_ = Phase::header;
      deliver_control(payload, h);
      continue;
    }

    if (remaining_ != 0 && avail == 0) return;
    const size_t n = remaining_ < avail ? remaining_ : avail;
    if (masked) mask_phase_ = apply_mask(p, p, n, mask_, mask_phase_);
    const std::span<const uint8_t> chunk{p, n};
    p += n;
    remaining_ -= static_cast<uint32_t>(n);
    const bool text = message_ == Message::text;
    const bool frame_done = remaining_ == 0;
    const bool last = frame_done && fin_;
    if (text && config_->check_text_utf8 && (!utf8_.feed(chunk) || (last && !utf8_.at_boundary()))) {
      return fail(h, {close_code::invalid_payload, "invalid UTF-8 in text message"});
    }
    if (frame_done) {
      phase_ = Phase::header;
      if (last) message_ = Message::none;
      // Optional: a handler that tracks liveness by frames.
      if constexpr (requires { h.on_frame_complete(); }) h.on_frame_complete();
    }
    if (n != 0 || last) {
      const bool first = first_pending_;
      first_pending_ = false;
      h.on_message_data(chunk, text, first, last);
    }
  }
}

template <class Handler>
void Decoder::deliver_control(std::span<const uint8_t> payload, Handler& h) {
  switch (opcode_) {
    case Opcode::ping:
      h.on_ping(payload);
      return;
    case Opcode::pong:
      h.on_pong(payload);
      return;
    case Opcode::close: {
      uint16_t code = 0;
      std::string_view reason;
      const Fault fault = parse_close(payload, code, reason);
      if (fault.code != 0) return fail(h, fault);
      phase_ = Phase::closed;
      h.on_close(code, reason);
      return;
    }
    default:
      __builtin_trap();  // consume_header admits no other control opcode
  }
}

}  // namespace mf::ws
