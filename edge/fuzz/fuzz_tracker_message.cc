// Fuzz target: WebTorrent tracker message parsing and the replies built from
// it. Any bytes must give either a request or a failure reason, never a
// crash; raw offer/answer views must stay inside the input; every reply the
// edge would write from a parsed request must parse again to the same ids.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "edge/tracker_message.h"
#include "edge/tracker_reply.h"

namespace {

bool inside(std::string_view view, const char* begin, size_t size) {
  return view.empty() || (view.data() >= begin && view.data() + view.size() <= begin + size);
}

// Re-parses `text` as a scrape of the ids it holds: written ids must decode
// to themselves.
void check_written_id(const mf::edge::TrackerId& id) {
  static mf::edge::TrackerMessageParser checker;
  std::array<char, 256> out;
  mf::JsonWriter w(out);
  w.raw(R"({"action":"scrape","info_hash":)");
  mf::edge::write_tracker_id(w, id);
  w.raw("}");
  if (!w.ok()) std::abort();
  std::string storage(w.text());
  size_t size = storage.size();
  storage.append(simdjson::SIMDJSON_PADDING, ' ');
  auto again = checker.parse(std::string_view(storage.data(), size));
  if (!again || (*again)->scrape_count != 1 || (*again)->scrape_hashes[0] != id) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mf::edge::TrackerMessageParser parser;
  std::vector<char> padded(size + simdjson::SIMDJSON_PADDING, ' ');
  if (size > 0) std::memcpy(padded.data(), data, size);
  auto result = parser.parse(std::string_view(padded.data(), size));
  static std::array<char, 70000> out;
  if (!result) {
    if (result.error().reason.empty()) std::abort();
    if (mf::edge::write_tracker_failure(out, result.error()).empty()) std::abort();
    return 0;
  }
  const auto& request = **result;
  if (request.offer_count > request.offers_total || request.offer_count > mf::edge::max_tracker_offers_parsed)
    std::abort();
  for (size_t i = 0; i < request.offer_count; ++i) {
    if (!inside(request.offers[i].offer_raw, padded.data(), size)) std::abort();
    if (request.offers[i].offer_raw.front() != '{') std::abort();
    if (mf::edge::write_tracker_offer(out, request.info_hash, request.peer_id, request.offers[i].offer_raw,
                            request.offers[i].offer_id).empty())
      std::abort();
  }
  if (request.has_answer && !inside(request.answer_raw, padded.data(), size)) std::abort();
  check_written_id(request.info_hash);
  check_written_id(request.peer_id);
  for (size_t i = 0; i < request.scrape_count; ++i) check_written_id(request.scrape_hashes[i]);
  return 0;
}
