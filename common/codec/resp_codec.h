#pragma once
// RESP2 (the Redis/Valkey serialization protocol) for the Valkey client:
// commands out, replies in. Pure: bytes in, replies out, no IO, no clock.
//
// Commands. A command is an array of bulk strings, the only form servers
// accept from clients besides inline commands:
//   *<argc>\r\n  then per argument  $<length>\r\n<bytes>\r\n
// Arguments are binary-safe (\0 and \r\n inside are fine: lengths frame
// them). The bytes are exactly what hiredis' redisFormatCommandArgv produces
// (the unit tests and the fuzz target compare both), but the encoder here
// writes into the caller's buffer: redisFormatCommandArgv mallocs a new
// buffer for every command, and a pipelined batch of presence refreshes must
// not allocate per command (README rule on the steady-state path).
//
// Replies. ReplyReader wraps hiredis' redisReader (a proven RESP parser;
// docs/architecture.md, the dependency table) with its own reply-object functions, so that a reply is built
// into two arenas owned by the reader (nodes and bytes, cleared per reply and
// keeping their capacity up to a bound) instead of one malloc per redisReply
// element. A reply is handed out as a ReplyView, valid until the next next().
//
// Limits (untrusted input must not grow memory without bound):
//   - max_reply_bytes caps one reply: its strings plus 16 bytes per element,
//     and the bytes buffered while it is incomplete. Over it: too_large.
//   - max_elements caps the elements of one array (hiredis itself refuses
//     counts over INT_MAX and nesting deeper than 7 levels: protocol).
// hiredis 0.14 is lenient where RESP is loose: a length or integer that is
// not a number reads as -1 (a nil bulk, or the integer -1). That is its
// behaviour and ours; servers never send it.
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

struct redisReader;
struct redisReplyObjectFunctions;

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
};

enum class ReplyError : uint8_t {
  protocol,       // not RESP (bad type byte, bad length, nesting over 7)
  too_large,      // over max_reply_bytes or max_elements
  out_of_memory,  // hiredis could not grow its buffer
};
std::string_view reply_error_name(ReplyError error);

class ReplyReader {
 public:
  explicit ReplyReader(const ReaderLimits& limits = {});
  // hiredis keeps pointers to this object: it neither copies nor moves.
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;
  ~ReplyReader();

  // Appends received bytes (copied into hiredis' buffer). Then call next()
  // until it returns nullopt.
  std::expected<void, ReplyError> feed(std::span<const uint8_t> bytes);
  // The next complete reply, or nullopt when more bytes are needed.
  std::expected<std::optional<ReplyView>, ReplyError> next();
  // Forgets everything buffered and any error (a new connection).
  void reset();

  // Bytes received and not yet part of a returned reply.
  size_t buffered_bytes() const;
  // hiredis' description of a protocol error (empty otherwise).
  std::string_view error_text() const;
  const ReaderLimits& limits() const { return limits_; }

 private:
  // hiredis callbacks (see resp_codec.cc).
  friend struct ReaderCallbacks;
  void create();
  // Index of a new node for `task`, or UINT32_MAX when over a limit.
  uint32_t place(const void* task, ReplyType type, uint32_t length, uint64_t value);
  bool over_budget(size_t more_bytes) const;

  ReaderLimits limits_;
  redisReader* reader_ = nullptr;
  redisReplyObjectFunctions* functions_ = nullptr;  // owned; hiredis points at it
  std::vector<ReplyNode> nodes_;
  std::string bytes_;
  std::optional<ReplyError> failed_;
  bool callback_over_limit_ = false;
  bool returned_ = false;  // the arenas hold a reply already handed out
};

}  // namespace mf::resp
