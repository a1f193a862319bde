#include "common/http/websocket_message_stream.h"

namespace mf::ws {

std::expected<void, tls::Failure> MessageStream::send_pieces(TransportStream& transport, Opcode opcode,
                                                             std::span<std::span<const uint8_t>> frame,
                                                             MessageWorkspace& workspace, const uint8_t* mask_key) {
  if (frame.empty()) return std::unexpected(tls::Failure{"a frame without the header's place", 0});
  const std::span<const std::span<const uint8_t>> payload = frame.subspan(1);
  size_t payload_size = 0;
  for (std::span<const uint8_t> piece : payload) payload_size += piece.size();
  if (role_ == Role::client) {
    // Masking needs a copy anyway: header and masked payload are built once
    // in the workspace and written as one piece.
    if (mask_key == nullptr) return std::unexpected(tls::Failure{"client frame without a masking key", 0});
    std::span<uint8_t> out = workspace.frame();
    const size_t header_size = header_bytes(payload_size, true);
    if (out.size() < header_size || out.size() - header_size < payload_size)
      return std::unexpected(tls::Failure{frame_too_large, 0});
    size_t n = encode_header(out.data(), opcode, true, payload_size, mask_key);
    uint8_t phase = 0;
    for (std::span<const uint8_t> piece : payload) {
      phase = apply_mask(out.data() + n, piece.data(), piece.size(), mask_key, phase);
      n += piece.size();
    }
    return transport.write(out.first(n));
  }
  // Header and payload are written as pieces, never assembled: plain, each
  // is appended to the send queue; over TLS they are sealed together into
  // one record, by the record layer straight into the send queue
  // (docs/architecture.md, "The relay path"); OpenSSL's own record layer
  // (TLS 1.2 and the other cases it keeps) gathers them in the workspace.
  uint8_t header[max_header_bytes];
  frame[0] = {header, encode_header(header, opcode, true, payload_size, nullptr)};
  return transport.write_vectored(frame, workspace.frame());
}

}  // namespace mf::ws
