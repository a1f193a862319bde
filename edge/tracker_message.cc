#include "edge/tracker_message.h"

namespace mf::edge {

std::optional<TrackerId> decode_tracker_id(std::string_view utf8) {
  TrackerId id{};
  size_t count = 0;
  for (size_t i = 0; i < utf8.size(); ++i) {
    if (count == tracker_id_bytes) return std::nullopt;
    auto lead = static_cast<uint8_t>(utf8[i]);
    if (lead < 0x80) {
      id[count++] = lead;
      continue;
    }
    // U+0080..U+00FF are the two-byte forms C2 80..C3 BF.
    if ((lead != 0xC2 && lead != 0xC3) || i + 1 == utf8.size()) return std::nullopt;
    auto next = static_cast<uint8_t>(utf8[++i]);
    if ((next & 0xC0) != 0x80) return std::nullopt;
    id[count++] = static_cast<uint8_t>(((lead & 0x03) << 6) | (next & 0x3F));
  }
  if (count != tracker_id_bytes) return std::nullopt;
  return id;
}

namespace {

using simdjson::ondemand::json_type;
using ondemand_value = simdjson::ondemand::value;

bool read_id(ondemand_value& value, TrackerId& out) {
  std::string_view text;
  if (!read_json_string(value, text)) return false;
  auto id = decode_tracker_id(text);
  if (!id) return false;
  out = *id;
  return true;
}

bool is_null(ondemand_value& value) {
  json_type type;
  return value.type().get(type) == simdjson::SUCCESS && type == json_type::null;
}

// An optional counter: a non-negative integer is kept; null, absent or any
// other value is ignored (clients send null for unknown sizes: JSON has no
// Infinity, which is what the JavaScript client holds for an unknown `left`).
void read_optional_counter(ondemand_value& value, bool& has, uint64_t& out) {
  uint64_t n;
  if (read_json_unsigned(value, n)) {
    has = true;
    out = n;
  }
}

struct Fields {
  bool have_action = false, action_valid = false;
  bool have_info_hash = false, info_hash_valid = false, info_hash_is_array = false;
  bool have_peer_id = false, peer_id_valid = false;
  bool have_to_peer_id = false, to_peer_id_valid = false;
  bool have_offer_id = false, offer_id_valid = false;
  bool event_valid = true, offers_valid = true, answer_valid = true, scrape_hashes_valid = true;
  bool too_many_scrape_hashes = false;
};

}  // namespace

TrackerMessageParser::TrackerMessageParser() : parser_(simdjson::ondemand::DEFAULT_BATCH_SIZE) {}

std::expected<const TrackerRequest*, TrackerRejection> TrackerMessageParser::parse(std::string_view text) {
  auto fail = [](std::string_view reason) { return std::unexpected(TrackerRejection{reason}); };
  simdjson::padded_string_view input(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING);
  simdjson::ondemand::document doc;
  if (parser_.iterate(input).get(doc)) return fail("invalid JSON");
  switch (check_object_document(doc)) {
    case DocumentCheck::object: break;
    case DocumentCheck::not_object: return fail("message must be a JSON object");
    case DocumentCheck::not_json:
    case DocumentCheck::trailing_data: return fail("invalid JSON");
  }
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return fail("invalid JSON");

  TrackerRequest& request = request_;
  request.action = TrackerAction::announce;
  request.event = AnnounceEvent::update;
  request.has_numwant = request.has_left = false;
  request.numwant = request.left = 0;
  request.has_offers = false;
  request.offers_total = request.offer_count = 0;
  request.has_answer = false;
  request.answer_raw = {};
  request.full_scrape = false;
  request.scrape_count = 0;

  Fields f;
  for (auto field : object) {
    std::string_view key;
    ondemand_value value;
    if (field.unescaped_key().get(key) || field.value().get(value)) return fail("invalid JSON");
    if (key == "action") {
      f.have_action = true;
      std::string_view action;
      if (read_json_string(value, action)) {
        if (action == "announce") {
          f.action_valid = true;
          request.action = TrackerAction::announce;
        } else if (action == "scrape") {
          f.action_valid = true;
          request.action = TrackerAction::scrape;
        }
      }
    } else if (key == "info_hash") {
      f.have_info_hash = true;
      json_type type;
      if (value.type().get(type)) return fail("invalid JSON");
      if (type == json_type::array) {
        f.info_hash_is_array = true;
        simdjson::ondemand::array array;
        if (value.get_array().get(array)) return fail("invalid JSON");
        for (auto element : array) {
          ondemand_value item;
          TrackerId id;
          if (element.get(item) || !read_id(item, id)) {
            f.scrape_hashes_valid = false;
            break;
          }
          if (request.scrape_count == max_tracker_scrape_hashes) {
            f.too_many_scrape_hashes = true;
            break;
          }
          request.scrape_hashes[request.scrape_count++] = id;
        }
      } else if (read_id(value, request.info_hash)) {
        f.info_hash_valid = true;
        request.scrape_hashes[0] = request.info_hash;
        request.scrape_count = 1;
      }
    } else if (key == "peer_id") {
      f.have_peer_id = true;
      f.peer_id_valid = read_id(value, request.peer_id);
    } else if (key == "to_peer_id") {
      f.have_to_peer_id = true;
      f.to_peer_id_valid = read_id(value, request.to_peer_id);
    } else if (key == "offer_id") {
      f.have_offer_id = true;
      f.offer_id_valid = read_id(value, request.answer_offer_id);
    } else if (key == "event") {
      std::string_view event;
      if (is_null(value)) continue;
      if (!read_json_string(value, event)) f.event_valid = false;
      else if (event == "started") request.event = AnnounceEvent::started;
      else if (event == "stopped") request.event = AnnounceEvent::stopped;
      else if (event == "completed") request.event = AnnounceEvent::completed;
      // "paused" (bittorrent-tracker 10 and later) keeps the peer like an update.
      else if (event == "update" || event == "paused" || event.empty()) request.event = AnnounceEvent::update;
      else f.event_valid = false;
    } else if (key == "numwant") {
      read_optional_counter(value, request.has_numwant, request.numwant);
    } else if (key == "left") {
      read_optional_counter(value, request.has_left, request.left);
    } else if (key == "offers") {
      if (is_null(value)) continue;
      simdjson::ondemand::array array;
      if (value.get_array().get(array)) {
        f.offers_valid = false;
        continue;
      }
      request.has_offers = true;
      for (auto element : array) {
        simdjson::ondemand::object offer_object;
        if (element.get_object().get(offer_object)) {
          f.offers_valid = false;
          break;
        }
        TrackerOffer offer;
        bool have_offer = false, have_id = false;
        for (auto offer_field : offer_object) {
          std::string_view offer_key;
          ondemand_value offer_value;
          if (offer_field.unescaped_key().get(offer_key) || offer_field.value().get(offer_value))
            return fail("invalid JSON");
          if (offer_key == "offer") {
            json_type type;
            if (offer_value.type().get(type) || type != json_type::object) break;
            auto raw = raw_json_value_text(doc, offer_value);
            if (!raw) return fail("invalid JSON");
            offer.offer_raw = *raw;
            have_offer = true;
          } else if (offer_key == "offer_id") {
            have_id = read_id(offer_value, offer.offer_id);
          }
        }
        if (!have_offer || !have_id) {
          f.offers_valid = false;
          break;
        }
        if (request.offer_count < max_tracker_offers_parsed) request.offers[request.offer_count++] = offer;
        ++request.offers_total;
      }
    } else if (key == "answer") {
      if (is_null(value)) continue;
      json_type type;
      if (value.type().get(type) || type != json_type::object) {
        f.answer_valid = false;
        continue;
      }
      auto raw = raw_json_value_text(doc, value);
      if (!raw) return fail("invalid JSON");
      request.answer_raw = *raw;
      request.has_answer = true;
    }
    // Other fields (uploaded, downloaded, trackerid, ...) are ignored.
  }

  TrackerRejection rejection;
  if (!f.have_action || !f.action_valid) {
    rejection.reason = "invalid action";
    return std::unexpected(rejection);
  }
  rejection.has_action = true;
  rejection.action = request.action;
  if (request.action == TrackerAction::scrape) {
    if (!f.have_info_hash) {
      request.full_scrape = true;
      return &request;
    }
    if (f.too_many_scrape_hashes) rejection.reason = "too many info_hash in scrape";
    else if (f.info_hash_is_array ? !f.scrape_hashes_valid : !f.info_hash_valid) rejection.reason = "invalid info_hash";
    else return &request;
    return std::unexpected(rejection);
  }
  if (!f.have_info_hash || f.info_hash_is_array || !f.info_hash_valid) {
    rejection.reason = "invalid info_hash";
    return std::unexpected(rejection);
  }
  rejection.has_info_hash = true;
  rejection.info_hash = request.info_hash;
  if (!f.have_peer_id || !f.peer_id_valid) rejection.reason = "invalid peer_id";
  else if (!f.event_valid) rejection.reason = "invalid event";
  else if (!f.offers_valid) rejection.reason = "invalid offers";
  else if (!f.answer_valid) rejection.reason = "invalid answer";
  else if (request.has_answer && (!f.have_to_peer_id || !f.to_peer_id_valid))
    rejection.reason = "invalid to_peer_id (required with answer)";
  else if (request.has_answer && (!f.have_offer_id || !f.offer_id_valid))
    rejection.reason = "invalid offer_id (required with answer)";
  else return &request;
  return std::unexpected(rejection);
}

}  // namespace mf::edge
