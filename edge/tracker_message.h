#pragma once
// Parsing of WebTorrent tracker messages (docs/tracker.md, "The protocol"):
// bytes in, a typed request or a failure reason out; no IO. As for SDK
// messages (edge/sdk_message.h) the whole message is validated as JSON before
// any field is trusted; an `offer` or `answer` object is kept as the sender's
// raw JSON text and forwarded untouched.
//
// The four ids (info_hash, peer_id, to_peer_id, offer_id) are 20 bytes each,
// carried as JSON strings of 20 code points U+0000..U+00FF (a JavaScript
// "binary" string): code point n is byte n.
#include <simdjson.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string_view>

#include "edge/json_document.h"

namespace mf::edge {

inline constexpr size_t tracker_id_bytes = 20;
using TrackerId = std::array<uint8_t, tracker_id_bytes>;

// Decodes the unescaped (UTF-8) text of a JSON string into a 20-byte id:
// exactly 20 code points, each at most U+00FF; nullopt otherwise.
std::optional<TrackerId> decode_tracker_id(std::string_view utf8);

// Bounds of what one message may carry. Offers beyond the first
// max_tracker_offers_parsed are validated and counted but not kept (the
// edge relays at most `tracker.max_offers` <= this many); a scrape names at
// most max_tracker_scrape_hashes info_hashes, further ones are refused.
inline constexpr size_t max_tracker_offers_parsed = 64;
inline constexpr size_t max_tracker_scrape_hashes = 64;

enum class TrackerAction : uint8_t { announce, scrape };
enum class AnnounceEvent : uint8_t { update, started, stopped, completed };

struct TrackerOffer {
  TrackerId offer_id{};
  std::string_view offer_raw;  // the sender's JSON text of `offer` (an object)
};

// Views point into the message or the parser's string buffer and live until
// the next parse().
struct TrackerRequest {
  TrackerAction action = TrackerAction::announce;

  // announce
  TrackerId info_hash{}, peer_id{};
  AnnounceEvent event = AnnounceEvent::update;
  bool has_numwant = false, has_left = false;
  uint64_t numwant = 0, left = 0;
  bool has_offers = false;     // `offers` was an array (possibly empty)
  size_t offers_total = 0;     // offers in the message
  size_t offer_count = 0;      // offers kept: min(offers_total, max_tracker_offers_parsed)
  std::array<TrackerOffer, max_tracker_offers_parsed> offers{};
  bool has_answer = false;     // an answer: to_peer_id, offer_id and answer_raw are set
  TrackerId to_peer_id{}, answer_offer_id{};
  std::string_view answer_raw;  // the sender's JSON text of `answer` (an object)

  // scrape: info_hashes named (one string or an array); a scrape without
  // `info_hash` asks for every swarm (a full scrape).
  bool full_scrape = false;
  size_t scrape_count = 0;
  std::array<TrackerId, max_tracker_scrape_hashes> scrape_hashes{};
};

// A refused message. The reply is a failure reason that echoes `action` and
// `info_hash` when they were read (a client drops an announce reply whose
// info_hash is not its own, so a reason without them goes unseen).
struct TrackerRejection {
  std::string_view reason;  // static text
  bool has_action = false;
  TrackerAction action = TrackerAction::announce;
  bool has_info_hash = false;
  TrackerId info_hash{};
};

class TrackerMessageParser {
 public:
  TrackerMessageParser();
  // `text` must be followed by simdjson::SIMDJSON_PADDING readable bytes.
  // The request is the parser's own and valid until the next parse().
  std::expected<const TrackerRequest*, TrackerRejection> parse(std::string_view text);

 private:
  simdjson::ondemand::parser parser_;
  TrackerRequest request_;  // reused: it is large (the offers), never on the stack per message
};

}  // namespace mf::edge
