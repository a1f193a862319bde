// Arbitrary bytes as what a Valkey server sends: fed whole and in pieces cut
// where the input says, the reader must give the same replies (or the same
// sticky error), never read outside what it returns, and respect its caps.
// The same bytes, cut into arguments, drive the encoder, whose output must
// have the size it announced and read back as the arguments.
// Aborts when an invariant breaks.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec/resp_codec.h"

namespace {

using namespace mf::resp;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr ReaderLimits limits{.max_reply_bytes = 4096, .max_elements = 64};

// A reply flattened to text, and its size as the reader counts it.
void flatten(ReplyView r, std::string& out, size_t& nodes, size_t& bytes) {
  ++nodes;
  out += static_cast<char>('0' + static_cast<int>(r.type()));
  switch (r.type()) {
    case ReplyType::string:
    case ReplyType::status:
    case ReplyType::error:
      bytes += r.text().size();
      out += std::to_string(r.text().size());
      out += ':';
      out += r.text();
      break;
    case ReplyType::integer:
      out += std::to_string(r.integer());
      break;
    case ReplyType::nil:
      break;
    case ReplyType::array:
      check(r.size() <= limits.max_elements);
      out += std::to_string(r.size());
      out += '[';
      for (size_t i = 0; i < r.size(); ++i) flatten(r[i], out, nodes, bytes);
      out += ']';
      break;
  }
}

// Reads `input` fed in pieces ending at `cuts`; returns the replies and the
// final error (-1: none).
std::pair<std::vector<std::string>, int> read(std::span<const uint8_t> input, const std::vector<size_t>& cuts) {
  ReplyReader reader(limits);
  std::vector<std::string> replies;
  size_t at = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    size_t end = i < cuts.size() ? cuts[i] : input.size();
    // feed() fails only with the sticky error, which next() returned first.
    check(reader.feed(input.subspan(at, end - at)).has_value());
    at = end;
    for (;;) {
      auto r = reader.next();
      if (!r) {
        // Sticky, and explained.
        check(!reader.next() && !reader.feed(input).has_value());
        check(!reader.error_text().empty());
        return {replies, static_cast<int>(r.error())};
      }
      if (!r->has_value()) break;
      std::string flat;
      size_t nodes = 0, bytes = 0;
      flatten(**r, flat, nodes, bytes);
      check(nodes * sizeof(ReplyNode) + bytes <= limits.max_reply_bytes);
      replies.push_back(std::move(flat));
    }
    // What waits is one incomplete reply, under the cap plus the last piece.
    check(reader.buffered_bytes() <= limits.max_reply_bytes + (end - (i ? cuts[i - 1] : 0)) + 1);
  }
  return {replies, -1};
}

void check_reader(std::span<const uint8_t> input) {
  auto whole = read(input, {});
  // Two and three pieces, cut where the first bytes say.
  std::vector<size_t> cuts;
  if (!input.empty()) cuts.push_back(input[0] % (input.size() + 1));
  if (input.size() > 1) cuts.push_back(std::max(cuts[0], input[1] * input.size() / 256));
  auto pieces = read(input, cuts);
  // The too_large check on buffered bytes runs per piece, so a reply that
  // is both incomplete and over the cap may fail earlier in pieces; every
  // reply before the failure is the same.
  if (whole.second == -1 && pieces.second == -1) {
    check(whole.first == pieces.first);
  } else {
    size_t n = std::min(whole.first.size(), pieces.first.size());
    for (size_t i = 0; i < n; ++i) check(whole.first[i] == pieces.first[i]);
  }
  // One byte at a time, for short inputs.
  if (input.size() <= 256) {
    std::vector<size_t> every;
    for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
    auto bytes = read(input, every);
    size_t n = std::min(whole.first.size(), bytes.first.size());
    for (size_t i = 0; i < n; ++i) check(whole.first[i] == bytes.first[i]);
    if (whole.second == -1 && bytes.second == -1) check(whole.first == bytes.first);
  }
}

void check_encoder(std::span<const uint8_t> input) {
  // Arguments separated by 0xFF bytes (so any other byte, \0 and \r\n
  // included, appears inside them).
  std::vector<std::string_view> argv;
  const char* text = reinterpret_cast<const char*>(input.data());
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == 0xFF) {
      argv.emplace_back(text + start, i - start);
      start = i + 1;
    }
  }
  std::string mine;
  append_command(mine, argv);
  check(mine.size() == command_size(argv));
  // The documented form: "*<argc>\r\n" first, CRLF last.
  check(mine.starts_with("*" + std::to_string(argv.size()) + "\r\n") && mine.ends_with("\r\n"));

  ReplyReader reader(ReaderLimits{.max_reply_bytes = 1 << 20, .max_elements = 1 << 16});
  check(reader.feed(std::span(reinterpret_cast<const uint8_t*>(mine.data()), mine.size())).has_value());
  auto r = reader.next();
  check(r.has_value() && r->has_value() && (*r)->size() == argv.size());
  for (size_t i = 0; i < argv.size(); ++i) check((**r)[i].type() == ReplyType::string && (**r)[i].text() == argv[i]);
  check(reader.buffered_bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  check_reader(input);
  check_encoder(input);
  return 0;
}
