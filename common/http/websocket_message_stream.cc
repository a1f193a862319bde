#include "common/http/websocket_message_stream.h"

namespace mf::ws {

std::expected<void, tls::Failure> MessageStream::send(TransportStream& transport, Opcode opcode,
                                                      std::span<const uint8_t> payload, MessageWorkspace& workspace,
                                                      const uint8_t* mask_key) {
  if (role_ == Role::client) {
    // Masking needs a copy anyway: header and masked payload are built once
    // in the workspace and written as one piece.
    if (mask_key == nullptr) return std::unexpected(tls::Failure{"client frame without a masking key", 0});
    const size_t n = encode_frame(workspace.frame(), opcode, true, payload, mask_key);
    if (n == 0) return std::unexpected(tls::Failure{frame_too_large, 0});
    return transport.write(workspace.frame().first(n));
  }
  // Header and payload are written as two pieces, never assembled: plain,
  // each is appended to the send queue; over TLS they are sealed together
  // into one record, by the record layer straight into the send queue
  // (docs/architecture.md, "The relay path"); OpenSSL's own record layer
  // (TLS 1.2 and the other cases it keeps) gathers them in the workspace.
  uint8_t header[max_header_bytes];
  const size_t header_size = encode_header(header, opcode, true, payload.size(), nullptr);
  const std::span<const uint8_t> pieces[2] = {{header, header_size}, payload};
  return transport.write_vectored({pieces, payload.empty() ? size_t{1} : size_t{2}}, workspace.frame());
}

}  // namespace mf::ws
