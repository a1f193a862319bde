// Feeds arbitrary bytes to a Decoder whole, split at fuzzer-chosen offsets
// and byte by byte, and aborts unless every run yields the same events and
// those events respect the decoder's contract. Both roles: the server side
// (the edge reading clients) and the client side (mf-load and the ingress's
// health probes reading servers).
//
// Input layout: byte 0 selects the config (bit 0 accept_binary, bits 1..2 the
// message limit, bit 3 the client role), byte 1 % 8 is the number k of split
// offsets, the next k bytes are the offsets (scaled to the stream), the rest
// is the stream.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/codec/utf8_validator.h"
#include "common/codec/websocket_codec.h"

namespace {

using mf::ws::Decoder;
using mf::ws::DecoderConfig;

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_wire_close_code(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

// Reassembles messages into comparable events and checks every callback.
struct Checker {
  const DecoderConfig* config;
  std::vector<std::string> events;
  std::string message;
  bool in_message = false;
  bool message_is_text = false;
  bool ended = false;  // close or error seen
  mf::Utf8Validator utf8;

  void on_message_data(std::span<const uint8_t> chunk, bool is_text, bool first, bool last) {
    check(!ended);
    check(first == !in_message);
    if (first) {
      message.clear();
      message_is_text = is_text;
      utf8.reset();
    }
    check(is_text == message_is_text);
    check(is_text || config->accept_binary);
    message.append(chunk.begin(), chunk.end());
    check(message.size() <= config->max_message_bytes);
    if (is_text) check(utf8.feed(chunk));  // every text chunk is a valid prefix
    in_message = !last;
    if (last) {
      const auto* p = reinterpret_cast<const uint8_t*>(message.data());
      if (is_text) check(mf::is_valid_utf8({p, message.size()}));
      events.push_back((is_text ? "T" : "B") + message);
    }
  }
  void on_ping(std::span<const uint8_t> p) {
    check(!ended && p.size() <= 125);
    events.push_back("i" + std::string(p.begin(), p.end()));
  }
  void on_pong(std::span<const uint8_t> p) {
    check(!ended && p.size() <= 125);
    events.push_back("o" + std::string(p.begin(), p.end()));
  }
  void on_close(uint16_t code, std::string_view reason) {
    check(!ended);
    check(code == mf::ws::close_code::no_status ? reason.empty() : is_wire_close_code(code));
    check(reason.size() <= 123);
    check(mf::is_valid_utf8({reinterpret_cast<const uint8_t*>(reason.data()), reason.size()}));
    ended = true;
    events.push_back("c" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_error(uint16_t code, std::string_view why) {
    check(!ended);
    check(code == 1002 || code == 1003 || code == 1007 || code == 1009);
    check(code != 1003 || !config->accept_binary);
    ended = true;
    events.push_back("e" + std::to_string(code) + ":" + std::string(why));
  }
};

std::vector<std::string> run(mf::ws::Role role, const DecoderConfig& config, const uint8_t* data,
                             size_t size, const std::vector<size_t>& cuts) {
  std::vector<uint8_t> buffer(data, data + size);  // decoding unmasks in place
  Decoder decoder(role, &config);
  Checker checker{&config, {}, {}, false, false, false, {}};
  size_t from = 0;
  for (size_t cut : cuts) {
    decoder.feed({buffer.data() + from, cut - from}, checker);
    from = cut;
  }
  decoder.feed({buffer.data() + from, size - from}, checker);
  const bool saw_error = !checker.events.empty() && checker.events.back()[0] == 'e';
  check(decoder.failed() == saw_error);
  if (!checker.ended) check(!checker.in_message || decoder.in_message());
  return checker.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr uint32_t kLimits[] = {16, 125, 1000, 16 * 1024};
  DecoderConfig config;
  config.accept_binary = (data[0] & 1) != 0;
  config.max_message_bytes = kLimits[(data[0] >> 1) & 3];
  const auto role = (data[0] & 8) != 0 ? mf::ws::Role::client : mf::ws::Role::server;
  size_t k = data[1] % 8;
  data += 2;
  size -= 2;
  if (size < k) return 0;
  const uint8_t* offsets = data;
  data += k;
  size -= k;

  std::vector<size_t> cuts;
  for (size_t i = 0; i < k; ++i) cuts.push_back(size == 0 ? 0 : offsets[i] * size / 256);
  std::sort(cuts.begin(), cuts.end());

  const auto whole = run(role, config, data, size, {});
  check(run(role, config, data, size, cuts) == whole);
  if (size <= 2048) {
    std::vector<size_t> every;
    for (size_t i = 1; i < size; ++i) every.push_back(i);
    check(run(role, config, data, size, every) == whole);
  }
  return 0;
}
