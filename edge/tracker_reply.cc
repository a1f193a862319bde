#include "edge/tracker_reply.h"

namespace mf::edge {

void write_tracker_id(JsonWriter& writer, const TrackerId& id) {
  static constexpr char hex[] = "0123456789abcdef";
  // At most 6 bytes per id byte, written through one raw() per run.
  char text[max_tracker_id_json_bytes];
  size_t n = 0;
  text[n++] = '"';
  for (uint8_t byte : id) {
    if (byte == '"' || byte == '\\') {
      text[n++] = '\\';
      text[n++] = static_cast<char>(byte);
    } else if (byte < 0x20 || byte == 0x7F) {
      text[n++] = '\\';
      text[n++] = 'u';
      text[n++] = '0';
      text[n++] = '0';
      text[n++] = hex[byte >> 4];
      text[n++] = hex[byte & 15];
    } else if (byte < 0x80) {
      text[n++] = static_cast<char>(byte);
    } else {
      text[n++] = static_cast<char>(0xC0 | (byte >> 6));
      text[n++] = static_cast<char>(0x80 | (byte & 0x3F));
    }
  }
  text[n++] = '"';
  writer.raw(std::string_view(text, n));
}

namespace {

std::string_view finish(const JsonWriter& writer) { return writer.ok() ? writer.text() : std::string_view{}; }

void write_head(JsonWriter& w, std::string_view action, const TrackerId& info_hash) {
  w.raw(R"({"action":")");
  w.raw(action);
  w.raw(R"(","info_hash":)");
  write_tracker_id(w, info_hash);
}

std::string_view write_relay(std::span<char> out, std::string_view kind_key, const TrackerId& info_hash,
                             const TrackerId& from, std::string_view raw, const TrackerId& offer_id) {
  JsonWriter w(out);
  write_head(w, "announce", info_hash);
  w.raw(R"(,"peer_id":)");
  write_tracker_id(w, from);
  w.raw(kind_key);
  w.raw(raw);
  w.raw(R"(,"offer_id":)");
  write_tracker_id(w, offer_id);
  w.raw("}");
  return finish(w);
}

}  // namespace

std::string_view write_tracker_announce_reply(std::span<char> out, const TrackerId& info_hash, uint64_t complete,
                                              uint64_t incomplete, uint32_t interval_seconds) {
  JsonWriter w(out);
  write_head(w, "announce", info_hash);
  w.raw(R"(,"complete":)");
  w.unsigned_number(complete);
  w.raw(R"(,"incomplete":)");
  w.unsigned_number(incomplete);
  w.raw(R"(,"interval":)");
  w.unsigned_number(interval_seconds);
  w.raw("}");
  return finish(w);
}

std::string_view write_tracker_offer(std::span<char> out, const TrackerId& info_hash, const TrackerId& from,
                                     std::string_view offer_raw, const TrackerId& offer_id) {
  return write_relay(out, R"(,"offer":)", info_hash, from, offer_raw, offer_id);
}

std::string_view write_tracker_answer(std::span<char> out, const TrackerId& info_hash, const TrackerId& from,
                                      std::string_view answer_raw, const TrackerId& offer_id) {
  return write_relay(out, R"(,"answer":)", info_hash, from, answer_raw, offer_id);
}

std::string_view write_tracker_failure(std::span<char> out, const TrackerRejection& failure) {
  JsonWriter w(out);
  w.raw(R"({"failure reason":)");
  w.string(failure.reason);
  if (failure.has_action) {
    w.raw(failure.action == TrackerAction::announce ? R"(,"action":"announce")" : R"(,"action":"scrape")");
  }
  if (failure.has_info_hash) {
    w.raw(R"(,"info_hash":)");
    write_tracker_id(w, failure.info_hash);
  }
  w.raw("}");
  return finish(w);
}

std::string_view write_tracker_scrape(std::span<char> out, std::span<const TrackerScrapeFile> files) {
  JsonWriter w(out);
  w.raw(R"({"action":"scrape","files":{)");
  bool first = true;
  for (const auto& file : files) {
    if (!first) w.raw(",");
    first = false;
    write_tracker_id(w, file.info_hash);
    w.raw(R"(:{"complete":)");
    w.unsigned_number(file.complete);
    w.raw(R"(,"incomplete":)");
    w.unsigned_number(file.incomplete);
    w.raw(R"(,"downloaded":)");
    w.unsigned_number(file.downloaded);
    w.raw("}");
  }
  w.raw("}}");
  return finish(w);
}

}  // namespace mf::edge
