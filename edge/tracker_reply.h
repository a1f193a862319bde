#pragma once
// Tracker-to-client messages of the WebTorrent tracker protocol
// (docs/tracker.md, "The protocol"), written into a caller-owned buffer (no
// allocation). An id is written as a JSON string of 20 code points
// U+0000..U+00FF; a relayed `offer` or `answer` is the sender's raw JSON text.
#include <cstdint>
#include <span>
#include <string_view>

#include "common/base/json_writer.h"
#include "edge/tracker_message.h"

namespace mf::edge {

// Appends `id` as a JSON string literal: printable ASCII as itself, '"', '\'
// and control bytes escaped, bytes 0x80..0xFF as the two-byte UTF-8 of the
// code point.
void write_tracker_id(JsonWriter& writer, const TrackerId& id);

// The longest a written id can be: 20 bytes escaped as \u00XX, and quotes.
inline constexpr size_t max_tracker_id_json_bytes = 2 + 6 * tracker_id_bytes;

struct TrackerScrapeFile {
  TrackerId info_hash{};
  uint64_t complete = 0, incomplete = 0, downloaded = 0;
};

// Each returns the message text (a view into `out`), or an empty view when
// `out` is too small.
std::string_view write_tracker_announce_reply(std::span<char> out, const TrackerId& info_hash, uint64_t complete,
                                              uint64_t incomplete, uint32_t interval_seconds);
// A relayed offer or answer: `from` is the sender's peer_id.
std::string_view write_tracker_offer(std::span<char> out, const TrackerId& info_hash, const TrackerId& from,
                                     std::string_view offer_raw, const TrackerId& offer_id);
std::string_view write_tracker_answer(std::span<char> out, const TrackerId& info_hash, const TrackerId& from,
                                      std::string_view answer_raw, const TrackerId& offer_id);
std::string_view write_tracker_failure(std::span<char> out, const TrackerRejection& failure);
std::string_view write_tracker_scrape(std::span<char> out, std::span<const TrackerScrapeFile> files);

}  // namespace mf::edge
