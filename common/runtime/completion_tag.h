#pragma once
// The 64-bit user_data every SQE carries, so one switch dispatches each
// completion (one dispatch per CQE, errors handled beside the normal path).
//
//   bit 63..56  kind        CompletionKind: which operation completed
//   bit 55..32  generation  24-bit generation of the socket slot (sockets
//                           only): a completion for a slot that has since
//                           been reused never reaches the new owner
//   bit 31..0   index       socket slot, or listener index for accepts
#include <cstdint>

namespace mf {

enum class CompletionKind : uint8_t {
  ignored = 0,       // fire-and-forget operations (close of a refused socket)
  accept = 1,        // multishot accept on listener `index`
  recv = 2,          // multishot recv on socket `index`
  send = 3,          // the one send in flight of socket `index`
  shutdown = 4,      // shutdown(SHUT_WR) of a closing socket
  close_chain = 5,   // cancels of its recv and send + close_direct of a finishing socket (a CQE each)
  wake = 6,          // MSG_RING from another shard: its mailbox has messages
  wake_sent = 7,     // our MSG_RING failed (success CQEs are skipped)
  signal_read = 8,   // read of the signalfd (shard 0)
  connect = 9,       // outbound connect of socket `index`
  socket_create = 10, // adoption of an outbound socket into the file table (FILES_UPDATE)
};

inline constexpr uint32_t generation_mask = 0xFFFFFF;

constexpr uint64_t make_tag(CompletionKind kind, uint32_t index, uint32_t generation = 0) {
  return (static_cast<uint64_t>(kind) << 56) |
         (static_cast<uint64_t>(generation & generation_mask) << 32) | index;
}
constexpr CompletionKind tag_kind(uint64_t tag) { return static_cast<CompletionKind>(tag >> 56); }
constexpr uint32_t tag_generation(uint64_t tag) { return static_cast<uint32_t>(tag >> 32) & generation_mask; }
constexpr uint32_t tag_index(uint64_t tag) { return static_cast<uint32_t>(tag); }

}  // namespace mf
