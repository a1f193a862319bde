#include "common/codec/resp_codec.h"

#include <charconv>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace mf::resp {
namespace {

size_t decimal_digits(size_t n) {
  size_t digits = 1;
  while (n >= 10) {
    n /= 10;
    ++digits;
  }
  return digits;
}

char* write_header(char* at, char kind, size_t n) {
  *at++ = kind;
  at = std::to_chars(at, at + 20, n).ptr;
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

// An integer, length or count in canonical decimal, as servers write it
// (and as Valkey's own string2ll reads it): "0", or an optional '-' and 1 to
// 19 digits without a leading zero, within int64 (from_chars takes no '+',
// space or other prefix).
std::optional<int64_t> parse_integer(std::string_view text) {
  const size_t first_digit = text.starts_with('-') ? 1 : 0;
  if (text.size() > first_digit + 1 && text[first_digit] == '0') return std::nullopt;
  if (text == "-0") return std::nullopt;
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The longest line a number takes: "-9223372036854775808".
constexpr size_t max_number_line = 20;

// A byte for an error message: itself when printable, else its hex value.
std::string describe_byte(uint8_t byte) {
  if (byte >= 0x21 && byte < 0x7f) return std::string("'") + static_cast<char>(byte) + "'";
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("0x") + hex[byte >> 4] + hex[byte & 15];
}

// A line for an error message, in quotes (so that an empty one shows).
std::string quoted(std::string_view line) { return "\"" + std::string(line) + "\""; }

bool is_resp3_type(char type) {
  return std::string_view("_,#!=(%~>|").find(type) != std::string_view::npos;
}

// Arenas above this capacity are given back after the reply that grew them,
// so one 64 MiB reply does not pin 64 MiB for the life of the connection.
constexpr size_t keep_arena_bytes = 256 * 1024;

}  // namespace

// ---- commands ----

size_t command_size(std::span<const std::string_view> argv) {
  size_t size = 1 + decimal_digits(argv.size()) + 2;
  for (std::string_view arg : argv) size += 1 + decimal_digits(arg.size()) + 2 + arg.size() + 2;
  return size;
}

size_t write_command(std::span<char> out, std::span<const std::string_view> argv) {
  if (out.size() < command_size(argv)) std::abort();
  char* at = write_header(out.data(), '*', argv.size());
  for (std::string_view arg : argv) {
    at = write_header(at, '$', arg.size());
    if (!arg.empty()) std::memcpy(at, arg.data(), arg.size());
    at += arg.size();
    *at++ = '\r';
    *at++ = '\n';
  }
  return static_cast<size_t>(at - out.data());
}

void append_command(std::string& out, std::span<const std::string_view> argv) {
  const size_t before = out.size();
  const size_t size = command_size(argv);
  // resize_and_overwrite would skip zero-filling; the fill is cheap next to
  // the copy of the arguments and keeps this plain.
  out.resize(before + size);
  write_command(std::span<char>(out.data() + before, size), argv);
}

// ---- replies ----

std::string_view reply_type_name(ReplyType type) {
  switch (type) {
    case ReplyType::string: return "string";
    case ReplyType::array: return "array";
    case ReplyType::integer: return "integer";
    case ReplyType::nil: return "nil";
    case ReplyType::status: return "status";
    case ReplyType::error: return "error";
  }
  return "?";
}

std::string_view reply_error_name(ReplyError error) {
  switch (error) {
    case ReplyError::protocol: return "protocol error";
    case ReplyError::too_large: return "reply too large";
  }
  return "?";
}

std::string_view ReplyView::text() const {
  const ReplyNode& n = node();
  if (n.type != ReplyType::string && n.type != ReplyType::status && n.type != ReplyType::error) return {};
  return std::string_view(bytes_ + n.value, n.length);
}

ReplyView ReplyView::operator[](size_t i) const {
  const ReplyNode& n = node();
  if (n.type != ReplyType::array || i >= n.length) std::abort();
  return ReplyView(nodes_, bytes_, static_cast<uint32_t>(n.value + i));
}

ReplyReader::ReplyReader(const ReaderLimits& limits) : limits_(limits) {
  open_.reserve(std::min<uint32_t>(limits_.max_depth, 64));
}

void ReplyReader::reset() {
  input_.clear();
  pos_ = 0;
  scanned_ = 0;
  in_bulk_ = false;
  bulk_length_ = 0;
  reply_done_ = false;
  open_.clear();
  nodes_.clear();
  bytes_.clear();
  failed_.reset();
  error_text_.clear();
  returned_ = false;
}

bool ReplyReader::over_budget(size_t more_bytes) const {
  return nodes_.size() * sizeof(ReplyNode) + bytes_.size() + more_bytes > limits_.max_reply_bytes;
}

ReplyReader::Step ReplyReader::fail(ReplyError error, std::string_view what, std::string_view detail) {
  failed_ = error;
  error_text_.assign(error == ReplyError::protocol ? "Protocol error: " : "");
  error_text_.append(what);
  if (!detail.empty()) error_text_.append(" ").append(detail);
  return Step::failed;
}

void ReplyReader::advance_to(size_t pos) {
  pos_ = pos;
  scanned_ = pos;
}

uint32_t ReplyReader::current_node() const {
  if (open_.empty()) return 0;
  const OpenArray& top = open_.back();
  return top.first_child + top.next;
}

void ReplyReader::finish_element() {
  while (!open_.empty()) {
    OpenArray& top = open_.back();
    if (++top.next < top.count) return;
    open_.pop_back();
  }
  reply_done_ = true;
}

size_t ReplyReader::find_line_end(size_t max_line, Step* step) {
  const char* data = input_.data();
  const size_t size = input_.size();
  const size_t from = std::max(scanned_, pos_ + 1);
  const void* found = from < size ? std::memchr(data + from, '\r', size - from) : nullptr;
  if (found == nullptr) {
    scanned_ = size;
    if (size - pos_ - 1 > max_line) {
      *step = fail(ReplyError::protocol, "a length, count or integer longer than 20 characters");
      return std::string_view::npos;
    }
    *step = Step::incomplete;
    return std::string_view::npos;
  }
  const size_t cr = static_cast<size_t>(static_cast<const char*>(found) - data);
  if (cr - pos_ - 1 > max_line) {
    *step = fail(ReplyError::protocol, "a length, count or integer longer than 20 characters");
    return std::string_view::npos;
  }
  if (cr + 1 == size) {
    scanned_ = cr;  // the LF may come with the next bytes
    *step = Step::incomplete;
    return std::string_view::npos;
  }
  if (data[cr + 1] != '\n') {
    *step = fail(ReplyError::protocol, "a CR not followed by LF in a line");
    return std::string_view::npos;
  }
  if (std::memchr(data + pos_ + 1, '\n', cr - pos_ - 1) != nullptr) {
    *step = fail(ReplyError::protocol, "an LF without CR in a line");
    return std::string_view::npos;
  }
  return cr;
}

ReplyReader::Step ReplyReader::read_bulk_body() {
  const size_t need = size_t{bulk_length_} + 2;
  if (input_.size() - pos_ < need) return Step::incomplete;
  const char* body = input_.data() + pos_;
  if (body[bulk_length_] != '\r' || body[bulk_length_ + 1] != '\n') {
    return fail(ReplyError::protocol, "a bulk string not followed by CRLF");
  }
  nodes_[current_node()] = ReplyNode{ReplyType::string, bulk_length_, bytes_.size()};
  bytes_.append(body, bulk_length_);
  in_bulk_ = false;
  advance_to(pos_ + need);
  finish_element();
  return Step::element;
}

// Reads one element at pos_: a whole leaf (or as much of a bulk string as
// has arrived), or an array's header. Its node is the slot current_node().
ReplyReader::Step ReplyReader::read_element() {
  if (in_bulk_) return read_bulk_body();
  if (pos_ == input_.size()) return Step::incomplete;
  const char type = input_[pos_];
  size_t max_line = max_number_line;
  switch (type) {
    case '+':
    case '-':
      max_line = SIZE_MAX;
      break;
    case ':':
    case '$':
    case '*':
      break;
    default:
      return fail(ReplyError::protocol,
                  is_resp3_type(type) ? "RESP3 type byte (the client speaks RESP2):" : "unknown type byte",
                  describe_byte(static_cast<uint8_t>(type)));
  }
  Step step = Step::incomplete;
  const size_t cr = find_line_end(max_line, &step);
  if (cr == std::string_view::npos) return step;
  const std::string_view line(input_.data() + pos_ + 1, cr - pos_ - 1);
  if (nodes_.empty()) {
    // The first element of a reply: its root node.
    if (over_budget(sizeof(ReplyNode))) return fail(ReplyError::too_large, "reply over the configured size cap");
    nodes_.emplace_back();
  }
  const uint32_t node = current_node();
  if (type == '+' || type == '-') {
    if (line.size() > UINT32_MAX || over_budget(line.size())) {
      return fail(ReplyError::too_large, "reply over the configured size cap");
    }
    nodes_[node] = ReplyNode{type == '+' ? ReplyType::status : ReplyType::error,
                             static_cast<uint32_t>(line.size()), bytes_.size()};
    bytes_.append(line);
    advance_to(cr + 2);
    finish_element();
    return Step::element;
  }
  const std::optional<int64_t> number = parse_integer(line);
  if (!number) {
    return fail(ReplyError::protocol,
                type == ':' ? "an integer that is not a number:" : "a length or count that is not a number:",
                quoted(line));
  }
  advance_to(cr + 2);
  if (type == ':') {
    nodes_[node] = ReplyNode{ReplyType::integer, 0, static_cast<uint64_t>(*number)};
    finish_element();
    return Step::element;
  }
  if (*number < -1) return fail(ReplyError::protocol, "a negative length or count:", quoted(line));
  if (*number == -1) {
    nodes_[node] = ReplyNode{ReplyType::nil, 0, 0};
    finish_element();
    return Step::element;
  }
  if (type == '$') {
    if (*number > UINT32_MAX || over_budget(static_cast<size_t>(*number))) {
      return fail(ReplyError::too_large, "a bulk string over the configured reply size cap:", quoted(line));
    }
    in_bulk_ = true;
    bulk_length_ = static_cast<uint32_t>(*number);
    return read_bulk_body();
  }
  if (*number > limits_.max_elements) {
    return fail(ReplyError::too_large, "an array over the configured element cap:", quoted(line));
  }
  const size_t count = static_cast<size_t>(*number);
  if (over_budget(count * sizeof(ReplyNode))) {
    return fail(ReplyError::too_large, "an array over the configured reply size cap:", quoted(line));
  }
  nodes_[node] = ReplyNode{ReplyType::array, static_cast<uint32_t>(count), nodes_.size()};
  if (count == 0) {
    finish_element();
    return Step::element;
  }
  if (open_.size() >= limits_.max_depth) {
    return fail(ReplyError::protocol, "arrays nested deeper than", std::to_string(limits_.max_depth));
  }
  // The children's slots, filled in as they are read (depth first, so a
  // child array's own children land after this block).
  nodes_.resize(nodes_.size() + count);
  open_.push_back(OpenArray{static_cast<uint32_t>(nodes_[node].value), static_cast<uint32_t>(count), 0});
  return Step::element;
}

std::expected<void, ReplyError> ReplyReader::feed(std::span<const uint8_t> bytes) {
  if (failed_) return std::unexpected(*failed_);
  if (bytes.empty()) return {};
  // Bytes already read are dropped once they are at least as many as those
  // kept, so each received byte is moved a bounded number of times however
  // many pieces a large reply arrives in.
  if (pos_ > 0 && pos_ >= input_.size() - pos_) {
    input_.erase(0, pos_);
    scanned_ -= pos_;
    pos_ = 0;
  }
  input_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return {};
}

std::expected<std::optional<ReplyView>, ReplyError> ReplyReader::next() {
  if (failed_) return std::unexpected(*failed_);
  if (returned_) {
    returned_ = false;
    if (nodes_.capacity() * sizeof(ReplyNode) > keep_arena_bytes) std::vector<ReplyNode>().swap(nodes_);
    if (bytes_.capacity() > keep_arena_bytes) std::string().swap(bytes_);
    nodes_.clear();
    bytes_.clear();
  }
  for (;;) {
    const Step step = read_element();
    if (step == Step::failed) return std::unexpected(*failed_);
    if (step == Step::incomplete) {
      // What is buffered is part of one reply (complete ones were taken):
      // past the cap it can only grow further.
      if (buffered_bytes() > limits_.max_reply_bytes) {
        fail(ReplyError::too_large, "reply over the configured size cap");
        return std::unexpected(*failed_);
      }
      return std::optional<ReplyView>();
    }
    if (reply_done_) break;
  }
  reply_done_ = false;
  returned_ = true;
  if (pos_ == input_.size()) {
    if (input_.capacity() > keep_arena_bytes) std::string().swap(input_);
    input_.clear();
    advance_to(0);
  }
  return std::optional<ReplyView>(ReplyView(nodes_.data(), bytes_.data(), 0));
}

}  // namespace mf::resp
