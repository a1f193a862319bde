#include "common/codec/resp_codec.h"

#include <hiredis/read.h>

#include <charconv>
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

// hiredis stores our objects as opaque pointers: node index + 1, so that no
// object is ever NULL (NULL tells hiredis that creation failed).
void* object_of(uint32_t index) { return reinterpret_cast<void*>(static_cast<uintptr_t>(index) + 1); }
uint32_t index_of(const void* object) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(object) - 1); }

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
    case ReplyError::out_of_memory: return "out of memory";
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

// The reply-object functions hiredis calls while parsing. Each places one
// node; `task->privdata` is the reader's (set by hiredis from r->privdata).
struct ReaderCallbacks {
  static ReplyReader& owner(const redisReadTask* task) { return *static_cast<ReplyReader*>(task->privdata); }

  static void* create_string(const redisReadTask* task, char* text, size_t length) {
    ReplyReader& r = owner(task);
    ReplyType type = task->type == REDIS_REPLY_ERROR    ? ReplyType::error
                     : task->type == REDIS_REPLY_STATUS ? ReplyType::status
                                                        : ReplyType::string;
    if (length > UINT32_MAX || r.over_budget(length + sizeof(ReplyNode))) {
      r.callback_over_limit_ = true;
      return nullptr;
    }
    uint32_t index = r.place(task, type, static_cast<uint32_t>(length), r.bytes_.size());
    r.bytes_.append(text, length);
    return object_of(index);
  }

  static void* create_array(const redisReadTask* task, int elements) {
    ReplyReader& r = owner(task);
    if (elements < 0 || static_cast<uint32_t>(elements) > r.limits_.max_elements ||
        r.over_budget((static_cast<size_t>(elements) + 1) * sizeof(ReplyNode))) {
      r.callback_over_limit_ = true;
      return nullptr;
    }
    uint32_t index = r.place(task, ReplyType::array, static_cast<uint32_t>(elements), 0);
    r.nodes_[index].value = r.nodes_.size();
    // The children's nodes, filled in as hiredis creates them (depth first,
    // so a child array's own children land after this block).
    r.nodes_.resize(r.nodes_.size() + static_cast<size_t>(elements));
    return object_of(index);
  }

  static void* create_integer(const redisReadTask* task, long long value) {
    ReplyReader& r = owner(task);
    if (r.over_budget(sizeof(ReplyNode))) {
      r.callback_over_limit_ = true;
      return nullptr;
    }
    return object_of(r.place(task, ReplyType::integer, 0, static_cast<uint64_t>(value)));
  }

  static void* create_nil(const redisReadTask* task) {
    ReplyReader& r = owner(task);
    if (r.over_budget(sizeof(ReplyNode))) {
      r.callback_over_limit_ = true;
      return nullptr;
    }
    return object_of(r.place(task, ReplyType::nil, 0, 0));
  }

  // Nodes live in the arenas, which the reader clears itself.
  static void free_object(void*) {}
};

ReplyReader::ReplyReader(const ReaderLimits& limits) : limits_(limits) {
  functions_ = new redisReplyObjectFunctions{&ReaderCallbacks::create_string, &ReaderCallbacks::create_array,
                                             &ReaderCallbacks::create_integer, &ReaderCallbacks::create_nil,
                                             &ReaderCallbacks::free_object};
  create();
}

ReplyReader::~ReplyReader() {
  redisReaderFree(reader_);
  delete functions_;
}

void ReplyReader::create() {
  reader_ = redisReaderCreateWithFunctions(functions_);
  // Like every other allocation in the process (operator new without
  // exceptions), running out of memory here is not survivable.
  if (reader_ == nullptr) std::abort();
  reader_->privdata = this;
}

void ReplyReader::reset() {
  redisReaderFree(reader_);
  create();
  nodes_.clear();
  bytes_.clear();
  failed_.reset();
  callback_over_limit_ = false;
  returned_ = false;
}

bool ReplyReader::over_budget(size_t more_bytes) const {
  return nodes_.size() * sizeof(ReplyNode) + bytes_.size() + more_bytes > limits_.max_reply_bytes;
}

uint32_t ReplyReader::place(const void* task_pointer, ReplyType type, uint32_t length, uint64_t value) {
  const auto* task = static_cast<const redisReadTask*>(task_pointer);
  uint32_t index;
  if (task->parent == nullptr) {
    index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  } else {
    const ReplyNode& parent = nodes_[index_of(task->parent->obj)];
    if (task->idx < 0 || static_cast<uint32_t>(task->idx) >= parent.length) std::abort();
    index = static_cast<uint32_t>(parent.value) + static_cast<uint32_t>(task->idx);
  }
  nodes_[index] = ReplyNode{type, length, value};
  return index;
}

std::expected<void, ReplyError> ReplyReader::feed(std::span<const uint8_t> bytes) {
  if (failed_) return std::unexpected(*failed_);
  if (bytes.empty()) return {};
  if (redisReaderFeed(reader_, reinterpret_cast<const char*>(bytes.data()), bytes.size()) != REDIS_OK) {
    failed_ = ReplyError::out_of_memory;
    return std::unexpected(*failed_);
  }
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
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    failed_ = callback_over_limit_            ? ReplyError::too_large
              : reader_->err == REDIS_ERR_OOM ? ReplyError::out_of_memory
                                              : ReplyError::protocol;
    return std::unexpected(*failed_);
  }
  if (reply == nullptr) {
    // What is buffered is one incomplete reply (complete ones were taken):
    // past the cap it can only grow further.
    if (buffered_bytes() > limits_.max_reply_bytes) {
      failed_ = ReplyError::too_large;
      return std::unexpected(*failed_);
    }
    return std::optional<ReplyView>();
  }
  returned_ = true;
  return std::optional<ReplyView>(ReplyView(nodes_.data(), bytes_.data(), index_of(reply)));
}

size_t ReplyReader::buffered_bytes() const { return reader_->len - reader_->pos; }

std::string_view ReplyReader::error_text() const {
  if (failed_ == ReplyError::too_large) return "reply over the configured size cap";
  return reader_->err != 0 ? std::string_view(reader_->errstr) : std::string_view();
}

}  // namespace mf::resp
