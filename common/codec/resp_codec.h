#pragma once
// RESP2 (the Redis/Valkey serialization protocol) for the Valkey client:
// commands out, replies in. Pure: bytes in, replies out, no IO, no clock.
//
// Commands. A command is an array of bulk strings, the only form servers
// accept from clients besides inline commands:
//   *<argc>\r\n  then per argument  $<length>\r\n<bytes>\r\n
// Arguments are binary-safe (\0 and \r\n inside are fine: lengths frame
// them). The unit tests check the documented bytes, and the fuzz target
// reads every command back as its arguments. The encoder writes into the
// caller's buffer, so that a pipelined batch of presence refreshes does
// not allocate per command (README rule on the steady-state path).
//
// Replies. ReplyReader is a resumable RESP2 reader (docs/architecture.md,
// "Layers": the codecs depend on common/base only). Received bytes are
// copied into its input buffer; next() reads as far as they go and keeps
// its place (the open arrays, a bulk string whose body is awaited), so a
// reply arriving in many pieces is read once, not again per piece. A reply
// is built into two arenas owned by the reader (nodes and bytes, cleared per
// reply and keeping their capacity up to a bound) instead of one allocation
// per element, and handed out as a ReplyView, valid until the next next().
//
// Strict where RESP is (a server never sends otherwise; anything else means
// the stream is not RESP or is out of step): a type byte other than
// + - : $ * (RESP3's types included: the client speaks RESP2), a line not
// ended by CRLF or holding a lone CR or LF, a bulk string not followed by
// CRLF, a length, count or integer that is not canonical decimal within
// int64 ("0", or an optional '-' and digits without a leading zero), or a
// negative length or count other than -1 (nil) are protocol errors.
//
// Limits (untrusted input must not grow memory without bound):
//   - max_reply_bytes caps one reply: its strings plus 16 bytes per element,
//     and the bytes buffered while it is incomplete. A bulk length or array
//     count that cannot fit fails at its header. Over it: too_large.
//   - max_elements caps the elements of one array (too_large).
//   - max_depth caps how many non-empty arrays may be open at once
//     (protocol error; Valkey's cluster topology replies nest at most 4).
// Errors are sticky: after one, the reader refuses everything until reset(),
// since the stream has no resynchronisation point. The connection is closed.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mf::resp {

// ---- commands ----

// Bytes the command takes on the wire.
size_t command_size(std::span<const std::string_view> argv);
// Writes the command at the start of `out`, which must hold command_size()
// bytes (a smaller buffer is a programming error and aborts). Returns the
// bytes written.
size_t write_command(std::span<char> out, std::span<const std::string_view> argv);
// Appends the command to `out` (amortised: no allocation once `out` has the
// capacity, as with a buffer reused across a batch).
void append_command(std::string& out, std::span<const std::string_view> argv);

// ---- replies ----

enum class ReplyType : uint8_t {
  string,   // $ bulk string, binary-safe
  array,    // * array (of any types, nested)
  integer,  // :
  nil,      // $-1 or *-1
  status,   // + simple string (OK, PONG, QUEUED)
  error,    // - error string ("ERR ...", "WRONGPASS ...", "NOAUTH ...")
};
std::string_view reply_type_name(ReplyType type);

// One element of a reply in the reader's node arena (16 bytes).
struct ReplyNode {
  ReplyType type = ReplyType::nil;
  uint32_t length = 0;  // string/status/error: bytes; array: elements
  // string/status/error: offset in the byte arena; array: index of the
  // first child node (children are contiguous); integer: the value.
  uint64_t value = 0;
};

// A reply or an element of one. Cheap to copy; valid until the next
// next() or reset() of the reader that produced it (feed() keeps it).
class ReplyView {
 public:
  ReplyView() = default;
  ReplyView(const ReplyNode* nodes, const char* bytes, uint32_t index)
      : nodes_(nodes), bytes_(bytes), index_(index) {}

  ReplyType type() const { return node().type; }
  bool is_error() const { return type() == ReplyType::error; }
  // string, status and error: the bytes (empty for other types).
  std::string_view text() const;
  // integer: the value (0 for other types).
  int64_t integer() const { return type() == ReplyType::integer ? static_cast<int64_t>(node().value) : 0; }
  // array: the number of elements (0 for other types).
  size_t size() const { return type() == ReplyType::array ? node().length : 0; }
  // array element i < size(); out of range is a programming error (aborts).
  ReplyView operator[](size_t i) const;

 private:
  const ReplyNode& node() const { return nodes_[index_]; }
  const ReplyNode* nodes_ = nullptr;
  const char* bytes_ = nullptr;
  uint32_t index_ = 0;
};

struct ReaderLimits {
  size_t max_reply_bytes = size_t{64} << 20;
  uint32_t max_elements = 1u << 20;
  uint32_t max_depth = 8;
};

enum class ReplyError : uint8_t {
  protocol,   // not RESP2 (see above), or arrays nested over max_depth
  too_large,  // over max_reply_bytes or max_elements
};
std::string_view reply_error_name(ReplyError error);

class ReplyReader {
 public:
  explicit ReplyReader(const ReaderLimits& limits = {});
  // A reader is a connection's: it neither copies nor moves.
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Appends received bytes (copied). Then call next() until it returns
  // nullopt. Fails only with the sticky error of an earlier next().
  std::expected<void, ReplyError> feed(std::span<const uint8_t> bytes);
  // The next complete reply, or nullopt when more bytes are needed.
  std::expected<std::optional<ReplyView>, ReplyError> next();
  // Forgets everything buffered and any error (a new connection).
  void reset();

  // Bytes received and not yet read into a reply.
  size_t buffered_bytes() const { return input_.size() - pos_; }
  // What was wrong, for the log: "Protocol error: ..." or the limit that
  // was passed (empty while there is no error).
  std::string_view error_text() const { return error_text_; }
  const ReaderLimits& limits() const { return limits_; }

 private:
  // An array whose elements are being read: they fill the nodes
  // [first_child, first_child + count), `next` is the one being read.
  struct OpenArray {
    uint32_t first_child;
    uint32_t count;
    uint32_t next;
  };
  enum class Step : uint8_t { element, incomplete, failed };

  Step read_element();
  Step read_bulk_body();
  // The index of the CR ending the line at pos_, or npos (with *step set)
  // while it is incomplete or when it is malformed. `max_line` caps the
  // bytes between the type byte and the CR.
  size_t find_line_end(size_t max_line, Step* step);
  uint32_t current_node() const;
  void finish_element();
  void advance_to(size_t pos);
  bool over_budget(size_t more_bytes) const;
  Step fail(ReplyError error, std::string_view what, std::string_view detail = {});

  ReaderLimits limits_;
  std::string input_;  // received; [pos_, size) is not read yet
  size_t pos_ = 0;
  size_t scanned_ = 0;  // the line at pos_ has no CR before this index
  // A bulk string's header was read, its body (and CRLF) is awaited.
  bool in_bulk_ = false;
  uint32_t bulk_length_ = 0;
  bool reply_done_ = false;
  std::vector<OpenArray> open_;
  std::vector<ReplyNode> nodes_;
  std::string bytes_;
  std::optional<ReplyError> failed_;
  std::string error_text_;
  bool returned_ = false;  // the arenas hold a reply already handed out
};

}  // namespace mf::resp
