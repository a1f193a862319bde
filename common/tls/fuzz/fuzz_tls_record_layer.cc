// The TLS 1.3 RecordLayer against arbitrary input. The first byte picks the
// cipher suite, the second what the rest is:
//   even, bit 7 clear: hostile bytes from the peer, fed in chunks whose
//         sizes come from the input. Nothing may crash, every call must
//         consume or stop, no plaintext may come out of bytes nobody sealed,
//         and a failed layer stays failed.
//   even, bit 7 set: hostile records sealed under the receiver's keys, so
//         the logic after decryption is reached: each record's inner content
//         type, content, padding and KeyUpdates come from the input
//         (RecordLayer::seal_inner_for_tests). Only application data sealed
//         may come out, in order; a receiver that neither failed nor saw
//         close_notify delivered all of it.
//   odd:  messages to seal (split where the input says), delivered to a
//         mirror layer in input-chosen chunks, optionally with one bit
//         flipped. Without the flip the mirror must return exactly what was
//         sealed; with it, it must fail (or wait for bytes a corrupted length
//         promised), having delivered only a prefix of it.
// Aborts when an invariant breaks.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "common/tls/tls_record_layer.h"

namespace {

using namespace mf::tls;

void check(bool ok) {
  if (!ok) std::abort();
}

struct VectorSink final : CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> bytes) override {
    // Only whole records leave the layer.
    check(bytes.size() >= kRecordHeaderBytes + 17);
    check(record_body_length(bytes.data()) + kRecordHeaderBytes == bytes.size());
    out.insert(out.end(), bytes.begin(), bytes.end());
    return true;
  }
  std::vector<uint8_t> out;
};

constexpr uint16_t kSuites[] = {kTlsAes128GcmSha256, kTlsAes256GcmSha384, kTlsChaCha20Poly1305Sha256};

void install(RecordLayer& layer, uint16_t suite, uint8_t read_fill, uint8_t write_fill) {
  const size_t hash = suite == kTlsAes256GcmSha384 ? 48 : 32;
  std::vector<uint8_t> read(hash, read_fill), write(hash, write_fill);
  static mf::BlockPool pool(64, 8);  // at most one partial record per layer
  check(layer.install(suite, read, write, 0, pool).has_value());
}

// Opens everything in `input`, in chunks sized by `sizes` (cycled). Returns
// false on failure; plaintext is appended to `plain`.
bool open_all(RecordLayer& layer, std::span<const uint8_t> input, std::span<const uint8_t> sizes,
              CiphertextSink& sink, std::vector<uint8_t>& plain) {
  static uint8_t scratch[kMaxRecordPlaintext + 512];
  size_t turn = 0;
  while (!input.empty()) {
    const size_t size = sizes.empty() ? input.size() : 1 + sizes[turn++ % sizes.size()] * 67 % 20000;
    std::span<const uint8_t> chunk = input.first(std::min(size, input.size()));
    input = input.subspan(chunk.size());
    while (true) {
      const size_t before = chunk.size();
      auto step = layer.open_next(chunk, scratch, sink);
      if (!step) {
        check(!layer.open_next(chunk, scratch, sink).has_value());  // stays failed
        return false;
      }
      if (step->opened == RecordLayer::Opened::need_more) {
        check(chunk.empty());
        break;
      }
      check(chunk.size() < before || step->opened != RecordLayer::Opened::need_more);
      if (step->opened == RecordLayer::Opened::peer_closed) return true;
      if (step->opened == RecordLayer::Opened::plaintext) {
        check(!step->plaintext.empty() && step->plaintext.size() <= kMaxRecordPlaintext);
        plain.insert(plain.end(), step->plaintext.begin(), step->plaintext.end());
      }
    }
  }
  return true;
}

}  // namespace

// The sealed-records mode: records described by the input, each
//   [kind] [length] [padding] [length bytes of content]
// kind % 8: 0..3 application data, handshake, alert, change_cipher_spec;
// 4: a KeyUpdate (length & 1: update_requested), after which the sender
// uses its next key; 5: only padding; 6: content type `length`, no content;
// 7: a handshake record of KeyUpdate-like messages (content repeated).
void sealed_records(uint16_t suite, std::span<const uint8_t> rest) {
  RecordLayer sender, receiver;
  install(sender, suite, 0x55, 0x66);
  install(receiver, suite, 0x66, 0x55);
  VectorSink wire, back;
  std::vector<uint8_t> sent;
  while (rest.size() >= 3) {
    const uint8_t kind = rest[0] % 8;
    const size_t length = std::min<size_t>(rest[1], rest.size() - 3);
    const size_t padding = rest[2] < 250 ? rest[2] % 32 : (rest[2] - 249) * 4000;
    std::vector<uint8_t> content(rest.begin() + 3, rest.begin() + 3 + static_cast<ptrdiff_t>(length));
    rest = rest.subspan(3 + length);
    uint8_t type = 0;
    switch (kind) {
      case 0: type = 23; break;
      case 1: type = 22; break;
      case 2: type = 21; break;
      case 3: type = 20; break;
      case 4: content = {24, 0, 0, 1, static_cast<uint8_t>(length & 1)}; type = 22; break;
      case 5: content.clear(); type = 0; break;
      case 6: type = static_cast<uint8_t>(length); content.clear(); break;
      case 7: {
        std::vector<uint8_t> messages;
        for (int i = 0; i < 1 + static_cast<int>(length % 7); ++i) messages.insert(messages.end(), {24, 0, 0, 1, 0});
        content = messages;
        type = 22;
        break;
      }
    }
    if (!sender.seal_inner_for_tests(type, content, padding, wire).has_value()) continue;  // over the limit
    if (type == 23) sent.insert(sent.end(), content.begin(), content.end());
    if (kind == 4) check(sender.next_write_key_for_tests().has_value());
  }
  std::vector<uint8_t> plain;
  static uint8_t scratch[kMaxRecordPlaintext + 512];
  std::span<const uint8_t> in(wire.out);
  bool failed = false;
  bool closed = false;
  while (!in.empty() && !failed && !closed) {
    auto step = receiver.open_next(in, scratch, back);
    if (!step) {
      failed = true;
      check(!receiver.open_next(in, scratch, back).has_value());  // stays failed
      break;
    }
    closed = step->opened == RecordLayer::Opened::peer_closed;
    if (step->opened == RecordLayer::Opened::plaintext) {
      check(!step->plaintext.empty() && step->plaintext.size() <= kMaxRecordPlaintext);
      plain.insert(plain.end(), step->plaintext.begin(), step->plaintext.end());
    }
  }
  check(plain.size() <= sent.size() && std::equal(plain.begin(), plain.end(), sent.begin()));
  if (!failed && !closed) check(plain == sent);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint16_t suite = kSuites[data[0] % 3];
  const bool round_trip = data[1] & 1;
  std::span<const uint8_t> rest(data + 2, size - 2);

  if (!round_trip && (data[1] & 0x80) != 0) {
    sealed_records(suite, rest);
    return 0;
  }
  if (!round_trip) {
    RecordLayer layer;
    install(layer, suite, 0x11, 0x22);
    VectorSink sink;
    std::vector<uint8_t> plain;
    const size_t cut = rest.empty() ? 0 : rest[0] % 8;
    open_all(layer, rest.subspan(std::min(cut, rest.size())), rest.first(std::min(cut, rest.size())), sink, plain);
    // Forging a tag is out of reach: nothing sealed, nothing opened.
    check(plain.empty());
    return 0;
  }

  // Messages: each input byte b < 8 ends a message; the rest is content.
  std::vector<std::vector<uint8_t>> messages(1);
  std::vector<uint8_t> sizes;
  for (uint8_t b : rest) {
    if (b < 8) {
      messages.emplace_back();
      sizes.push_back(b);
    } else {
      messages.back().push_back(b);
    }
  }
  RecordLayer sender, receiver;
  install(sender, suite, 0x33, 0x44);
  install(receiver, suite, 0x44, 0x33);
  VectorSink wire, back;
  std::vector<uint8_t> sent;
  for (const std::vector<uint8_t>& message : messages) {
    // A message repeated to cross the 16 KiB record limit sometimes.
    const size_t copies = message.size() > 0 && message[0] == 0xff ? 300 : 1;
    std::vector<std::span<const uint8_t>> pieces(copies, std::span<const uint8_t>(message));
    check(sender.seal(pieces, wire).has_value());
    for (size_t i = 0; i < copies; ++i) sent.insert(sent.end(), message.begin(), message.end());
  }
  const bool flip = !rest.empty() && rest.back() % 5 == 0 && !wire.out.empty();
  if (flip) wire.out[rest.back() * 131u % wire.out.size()] ^= 0x10;
  std::vector<uint8_t> plain;
  const bool ok = open_all(receiver, wire.out, sizes, back, plain);
  check(plain.size() <= sent.size() && std::equal(plain.begin(), plain.end(), sent.begin()));
  if (!flip) {
    check(ok && plain == sent && back.out.empty());
  } else {
    // A flipped length can leave the receiver waiting for bytes that never
    // come; otherwise it fails.
    check(!ok || (receiver.partial_bytes() > 0 && plain.size() < sent.size()));
  }
  return 0;
}
