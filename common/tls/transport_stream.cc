#include "common/tls/transport_stream.h"

namespace mf {
namespace {
constexpr tls::Failure wire_full{"send queue full", 0};
}

void TransportStream::start_plain(Reactor& reactor, SocketHandle socket) {
  socket_wire_.bind(reactor, socket);
  start_plain(socket_wire_);
}

std::expected<void, std::string> TransportStream::start_tls(Reactor& reactor, SocketHandle socket,
                                                            const tls::Context& context, tls::Role role,
                                                            std::string_view sni_for_client,
                                                            BlockPool* partial_records) {
  socket_wire_.bind(reactor, socket);
  return start_tls(context, role, socket_wire_, sni_for_client, partial_records);
}

void TransportStream::start_plain(tls::CiphertextSink& wire) {
  session_ = tls::Session{};
  wire_ = &wire;
  secure_ = false;
}

std::expected<void, std::string> TransportStream::start_tls(const tls::Context& context, tls::Role role,
                                                            tls::CiphertextSink& wire,
                                                            std::string_view sni_for_client,
                                                            BlockPool* partial_records) {
  session_ = tls::Session{};
  wire_ = nullptr;
  secure_ = true;
  auto ok = session_.init(context, role, &wire, sni_for_client, partial_records);
  if (!ok) return ok;
  wire_ = &wire;
  return {};
}

std::expected<void, tls::Failure> TransportStream::start_client_handshake() {
  if (!secure_) return {};
  return session_.start_client_handshake();
}

void TransportStream::reset() {
  session_ = tls::Session{};
  wire_ = nullptr;
  secure_ = false;
}

std::expected<void, tls::Failure> TransportStream::write(std::span<const uint8_t> plaintext) {
  if (secure_) return session_.write(plaintext);
  if (plaintext.empty()) return {};
  if (wire_ == nullptr || !wire_->append_ciphertext(plaintext)) return std::unexpected(wire_full);
  return {};
}

std::expected<void, tls::Failure> TransportStream::write_vectored(std::span<const std::span<const uint8_t>> pieces,
                                                                  std::span<uint8_t> scratch) {
  if (secure_) return session_.write_vectored(pieces, scratch);
  if (wire_ == nullptr) return std::unexpected(wire_full);
  for (std::span<const uint8_t> piece : pieces) {
    if (!piece.empty() && !wire_->append_ciphertext(piece)) return std::unexpected(wire_full);
  }
  return {};
}

void TransportStream::send_close_notify() {
  if (secure_) session_.send_close_notify();
}

}  // namespace mf
