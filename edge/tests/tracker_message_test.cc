#include "edge/tracker_message.h"

#include <gtest/gtest.h>

#include <string>

#include "edge/tracker_reply.h"

namespace mf::edge {
namespace {

// Owns padded copies of the texts it parses (views live until the next parse).
class Parser {
 public:
  std::expected<const TrackerRequest*, TrackerRejection> parse(std::string text) {
    storage_ = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
    return parser_.parse(std::string_view(storage_.data(), text.size()));
  }

 private:
  std::string storage_;
  TrackerMessageParser parser_;
};

TrackerId id_of(std::string_view twenty) {
  TrackerId id{};
  for (size_t i = 0; i < tracker_id_bytes; ++i) id[i] = static_cast<uint8_t>(twenty[i]);
  return id;
}

const std::string info = "aaaaaaaaaaaaaaaaaaaa";
const std::string peer = "-WW0105-abcdefghijkl";

TEST(TrackerId, DecodesTwentyLatin1CodePoints) {
  auto ascii = decode_tracker_id("0123456789abcdefghij");
  ASSERT_TRUE(ascii);
  EXPECT_EQ(*ascii, id_of("0123456789abcdefghij"));
  // U+00FF and U+0080 in UTF-8, U+0000 as a byte.
  std::string mixed = std::string("\xC3\xBF\xC2\x80") + std::string(1, '\0') + std::string(17, 'x');
  auto decoded = decode_tracker_id(mixed);
  ASSERT_TRUE(decoded);
  EXPECT_EQ((*decoded)[0], 0xFF);
  EXPECT_EQ((*decoded)[1], 0x80);
  EXPECT_EQ((*decoded)[2], 0x00);
}

TEST(TrackerId, RefusesWrongLengthAndWideCodePoints) {
  EXPECT_FALSE(decode_tracker_id("0123456789abcdefghi"));
  EXPECT_FALSE(decode_tracker_id("0123456789abcdefghijk"));
  EXPECT_FALSE(decode_tracker_id(std::string("\xC4\x80") + std::string(19, 'x')));  // U+0100
  EXPECT_FALSE(decode_tracker_id(std::string("\xE2\x82\xAC") + std::string(19, 'x')));
  EXPECT_FALSE(decode_tracker_id(std::string(19, 'x') + "\xC3"));
  EXPECT_FALSE(decode_tracker_id(""));
}

TEST(TrackerId, WrittenIdsDecodeToThemselves) {
  TrackerId id{};
  for (size_t i = 0; i < tracker_id_bytes; ++i) id[i] = static_cast<uint8_t>(i * 13 + (i % 3 == 0 ? 0 : 120));
  id[0] = '"';
  id[1] = '\\';
  id[2] = 0;
  id[3] = 0xFF;
  std::array<char, 256> out;
  JsonWriter w(out);
  w.raw(R"({"action":"scrape","info_hash":)");
  write_tracker_id(w, id);
  w.raw("}");
  ASSERT_TRUE(w.ok());
  Parser parser;
  auto result = parser.parse(std::string(w.text()));
  ASSERT_TRUE(result) << result.error().reason;
  ASSERT_EQ((*result)->scrape_count, 1u);
  EXPECT_EQ((*result)->scrape_hashes[0], id);
}

TEST(TrackerMessage, PlainAnnounce) {
  Parser parser;
  auto result = parser.parse(R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                             R"(","event":"started","numwant":5,"uploaded":0,"downloaded":0,"left":null})");
  ASSERT_TRUE(result) << result.error().reason;
  const auto& r = **result;
  EXPECT_EQ(r.action, TrackerAction::announce);
  EXPECT_EQ(r.info_hash, id_of(info));
  EXPECT_EQ(r.peer_id, id_of(peer));
  EXPECT_EQ(r.event, AnnounceEvent::started);
  EXPECT_TRUE(r.has_numwant);
  EXPECT_EQ(r.numwant, 5u);
  EXPECT_FALSE(r.has_left);
  EXPECT_FALSE(r.has_offers);
  EXPECT_FALSE(r.has_answer);
}

TEST(TrackerMessage, EventDefaultsToUpdateAndIsChecked) {
  Parser parser;
  std::string head = R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer + R"(")";
  auto absent = parser.parse(head + "}");
  ASSERT_TRUE(absent);
  EXPECT_EQ((*absent)->event, AnnounceEvent::update);
  auto stopped = parser.parse(head + R"(,"event":"stopped"})");
  ASSERT_TRUE(stopped);
  EXPECT_EQ((*stopped)->event, AnnounceEvent::stopped);
  auto completed = parser.parse(head + R"(,"event":"completed","left":0})");
  ASSERT_TRUE(completed);
  EXPECT_EQ((*completed)->event, AnnounceEvent::completed);
  EXPECT_TRUE((*completed)->has_left);
  auto bad = parser.parse(head + R"(,"event":"exploded"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "invalid event");
  EXPECT_TRUE(bad.error().has_info_hash);
  EXPECT_EQ(bad.error().info_hash, id_of(info));
}

TEST(TrackerMessage, OffersKeepRawOfferText) {
  Parser parser;
  auto result = parser.parse(R"({"offers":[{"offer":{"type":"offer","sdp":"v=0\r\n"},"offer_id":"oooooooooooooooooooo"},)"
                             R"({"offer_id":"pppppppppppppppppppp","offer":{ "type" : "offer", "sdp":"x" }}],)"
                             R"("action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer + R"(","numwant":2})");
  ASSERT_TRUE(result) << result.error().reason;
  const auto& r = **result;
  EXPECT_TRUE(r.has_offers);
  ASSERT_EQ(r.offer_count, 2u);
  EXPECT_EQ(r.offers_total, 2u);
  EXPECT_EQ(r.offers[0].offer_raw, R"({"type":"offer","sdp":"v=0\r\n"})");
  EXPECT_EQ(r.offers[0].offer_id, id_of("oooooooooooooooooooo"));
  EXPECT_EQ(r.offers[1].offer_raw, R"({ "type" : "offer", "sdp":"x" })");
  EXPECT_EQ(r.offers[1].offer_id, id_of("pppppppppppppppppppp"));
}

TEST(TrackerMessage, OffersBeyondTheParsedBoundAreCounted) {
  std::string offers;
  for (size_t i = 0; i < max_tracker_offers_parsed + 3; ++i) {
    if (i) offers += ",";
    offers += R"({"offer":{"type":"offer","sdp":"s"},"offer_id":"oooooooooooooooooooo"})";
  }
  Parser parser;
  auto result = parser.parse(R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                             R"(","offers":[)" + offers + "]}");
  ASSERT_TRUE(result) << result.error().reason;
  EXPECT_EQ((*result)->offer_count, max_tracker_offers_parsed);
  EXPECT_EQ((*result)->offers_total, max_tracker_offers_parsed + 3);
}

TEST(TrackerMessage, MalformedOffersAreRefused) {
  Parser parser;
  std::string head = R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer + R"(","offers":)";
  for (std::string offers : {R"("x")", R"([1])", R"([{"offer":{"sdp":"s"}}])", R"([{"offer":"s","offer_id":"oooooooooooooooooooo"}])",
                             R"([{"offer":{},"offer_id":"short"}])"}) {
    auto result = parser.parse(head + offers + "}");
    ASSERT_FALSE(result) << offers;
    EXPECT_EQ(result.error().reason, "invalid offers") << offers;
  }
}

TEST(TrackerMessage, Answer) {
  Parser parser;
  auto result = parser.parse(R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                             R"(","to_peer_id":"tttttttttttttttttttt","answer":{"type":"answer","sdp":"v=0"},)"
                             R"("offer_id":"oooooooooooooooooooo"})");
  ASSERT_TRUE(result) << result.error().reason;
  const auto& r = **result;
  EXPECT_TRUE(r.has_answer);
  EXPECT_EQ(r.to_peer_id, id_of("tttttttttttttttttttt"));
  EXPECT_EQ(r.answer_offer_id, id_of("oooooooooooooooooooo"));
  EXPECT_EQ(r.answer_raw, R"({"type":"answer","sdp":"v=0"})");
}

TEST(TrackerMessage, AnswerNeedsTargetAndOfferId) {
  Parser parser;
  std::string head = R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                     R"(","answer":{"type":"answer","sdp":"v=0"})";
  auto no_target = parser.parse(head + R"(,"offer_id":"oooooooooooooooooooo"})");
  ASSERT_FALSE(no_target);
  EXPECT_EQ(no_target.error().reason, "invalid to_peer_id (required with answer)");
  auto no_offer = parser.parse(head + R"(,"to_peer_id":"tttttttttttttttttttt"})");
  ASSERT_FALSE(no_offer);
  EXPECT_EQ(no_offer.error().reason, "invalid offer_id (required with answer)");
}

TEST(TrackerMessage, IdsAreChecked) {
  Parser parser;
  auto short_hash = parser.parse(R"({"action":"announce","info_hash":"abc","peer_id":")" + peer + R"("})");
  ASSERT_FALSE(short_hash);
  EXPECT_EQ(short_hash.error().reason, "invalid info_hash");
  EXPECT_TRUE(short_hash.error().has_action);
  EXPECT_FALSE(short_hash.error().has_info_hash);
  auto wide = parser.parse(R"({"action":"announce","info_hash":"\u0100aaaaaaaaaaaaaaaaaaa","peer_id":")" + peer + R"("})");
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error().reason, "invalid info_hash");
  auto no_peer = parser.parse(R"({"action":"announce","info_hash":")" + info + R"("})");
  ASSERT_FALSE(no_peer);
  EXPECT_EQ(no_peer.error().reason, "invalid peer_id");
  // Escaped code points below U+0100 are bytes.
  auto escaped = parser.parse(R"({"action":"announce","info_hash":"\u0000\u00ff\"aaaaaaaaaaaaaaaaa","peer_id":")" +
                              peer + R"("})");
  ASSERT_TRUE(escaped) << escaped.error().reason;
  EXPECT_EQ((*escaped)->info_hash[0], 0);
  EXPECT_EQ((*escaped)->info_hash[1], 0xFF);
  EXPECT_EQ((*escaped)->info_hash[2], '"');
}

TEST(TrackerMessage, Scrape) {
  Parser parser;
  auto one = parser.parse(R"({"action":"scrape","info_hash":")" + info + R"("})");
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)->action, TrackerAction::scrape);
  EXPECT_FALSE((*one)->full_scrape);
  ASSERT_EQ((*one)->scrape_count, 1u);
  EXPECT_EQ((*one)->scrape_hashes[0], id_of(info));
  auto two = parser.parse(R"({"action":"scrape","info_hash":[")" + info + R"(","bbbbbbbbbbbbbbbbbbbb"]})");
  ASSERT_TRUE(two);
  ASSERT_EQ((*two)->scrape_count, 2u);
  EXPECT_EQ((*two)->scrape_hashes[1], id_of("bbbbbbbbbbbbbbbbbbbb"));
  auto full = parser.parse(R"({"action":"scrape"})");
  ASSERT_TRUE(full);
  EXPECT_TRUE((*full)->full_scrape);
  auto bad = parser.parse(R"({"action":"scrape","info_hash":[")" + info + R"(",3]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "invalid info_hash");
  std::string many;
  for (size_t i = 0; i <= max_tracker_scrape_hashes; ++i) many += (i ? ",\"" : "\"") + info + "\"";
  auto too_many = parser.parse(R"({"action":"scrape","info_hash":[)" + many + "]}");
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().reason, "too many info_hash in scrape");
}

TEST(TrackerMessage, RefusesWhatIsNotATrackerMessage) {
  Parser parser;
  EXPECT_EQ(parser.parse("{nope").error().reason, "invalid JSON");
  EXPECT_EQ(parser.parse(R"({"action":"announce",})").error().reason, "invalid JSON");
  EXPECT_EQ(parser.parse("[1]").error().reason, "message must be a JSON object");
  EXPECT_EQ(parser.parse(R"({"action":"announce"} {})").error().reason, "invalid JSON");
  EXPECT_EQ(parser.parse(R"({"action":"connect"})").error().reason, "invalid action");
  EXPECT_EQ(parser.parse(R"({"info_hash":")" + info + R"("})").error().reason, "invalid action");
  EXPECT_FALSE(parser.parse(R"({"action":"announce"})").error().has_info_hash);
  std::string deep(200, '[');
  EXPECT_EQ(parser.parse(R"({"action":"announce","x":)" + deep).error().reason, "invalid JSON");
}

TEST(TrackerReply, AnnounceReplyOfferAnswer) {
  std::array<char, 512> out;
  auto hash = id_of(info), from = id_of(peer), offer = id_of("oooooooooooooooooooo");
  EXPECT_EQ(write_tracker_announce_reply(out, hash, 3, 4, 120),
            R"({"action":"announce","info_hash":")" + info + R"(","complete":3,"incomplete":4,"interval":120})");
  EXPECT_EQ(write_tracker_offer(out, hash, from, R"({"type":"offer","sdp":"s"})", offer),
            R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                R"(","offer":{"type":"offer","sdp":"s"},"offer_id":"oooooooooooooooooooo"})");
  EXPECT_EQ(write_tracker_answer(out, hash, from, R"({"type":"answer","sdp":"s"})", offer),
            R"({"action":"announce","info_hash":")" + info + R"(","peer_id":")" + peer +
                R"(","answer":{"type":"answer","sdp":"s"},"offer_id":"oooooooooooooooooooo"})");
}

TEST(TrackerReply, FailureEchoesWhatIsKnown) {
  std::array<char, 256> out;
  EXPECT_EQ(write_tracker_failure(out, TrackerRejection{"invalid action"}), R"({"failure reason":"invalid action"})");
  TrackerRejection full{"full scrape is not allowed", true, TrackerAction::scrape};
  EXPECT_EQ(write_tracker_failure(out, full), R"({"failure reason":"full scrape is not allowed","action":"scrape"})");
  TrackerRejection known{"invalid offers", true, TrackerAction::announce, true, id_of(info)};
  EXPECT_EQ(write_tracker_failure(out, known),
            R"({"failure reason":"invalid offers","action":"announce","info_hash":")" + info + R"("})");
}

TEST(TrackerReply, Scrape) {
  std::array<char, 512> out;
  std::array<TrackerScrapeFile, 2> files{TrackerScrapeFile{id_of(info), 1, 2, 3},
                                         TrackerScrapeFile{id_of("bbbbbbbbbbbbbbbbbbbb"), 0, 0, 0}};
  EXPECT_EQ(write_tracker_scrape(out, files), R"({"action":"scrape","files":{")" + info +
                                                  R"(":{"complete":1,"incomplete":2,"downloaded":3},)"
                                                  R"("bbbbbbbbbbbbbbbbbbbb":{"complete":0,"incomplete":0,"downloaded":0}}})");
  EXPECT_EQ(write_tracker_scrape(out, {}), R"({"action":"scrape","files":{}})");
}

TEST(TrackerReply, TooSmallBufferGivesEmptyText) {
  std::array<char, 20> out;
  EXPECT_TRUE(write_tracker_announce_reply(out, id_of(info), 1, 1, 120).empty());
  TrackerId worst{};  // every byte a control byte: 6 bytes each
  std::array<char, max_tracker_id_json_bytes> exact;
  JsonWriter w(exact);
  write_tracker_id(w, worst);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.size(), max_tracker_id_json_bytes);
}

}  // namespace
}  // namespace mf::edge
