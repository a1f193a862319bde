#include "edge/cluster_keys.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace mf::edge::cluster {
namespace {

TEST(ClusterKeys, NamesCarryTheHashTagOfWhatTheyGroup) {
  std::string out;
  EXPECT_EQ(owner_key(out, "mf:", "peer-1"), "mf:{p:peer-1}:own");
  EXPECT_EQ(index_key(out, "mf:", "live-42", "720p"), "mf:{s:live-42}:idx:720p");
  EXPECT_EQ(record_key(out, "x:", "live-42", "720p"), "x:{s:live-42}:rec:720p");
  EXPECT_EQ(alive_key(out, "mf:", "edge-a"), "mf:{e:edge-a}:alive");
  EXPECT_EQ(edges_key(out, "mf:"), "mf:edges");
  EXPECT_EQ(signal_channel(out, "mf:", "edge-a", 12), "mf:{e:edge-a}:sig:12");
  // Tracker swarms: the 20-byte ids by their hex, so no byte of an id can
  // close the hash tag.
  std::string hex;
  EXPECT_EQ(hex_id(hex, std::string_view("\x00}\xff\x10", 4)), "007dff10");
  EXPECT_EQ(tracker_index_key(out, "mf:", "007dff10"), "mf:{t:007dff10}:idx");
  EXPECT_EQ(tracker_record_key(out, "mf:", "007dff10"), "mf:{t:007dff10}:rec");
  EXPECT_EQ(tracker_seeders_key(out, "mf:", "007dff10"), "mf:{t:007dff10}:seed");
  EXPECT_EQ(tracker_load_key(out, "mf:", "007dff10"), "mf:{t:007dff10}:load");
}

TEST(ClusterKeys, HexIdsRoundTripAndMalformedHexIsRefused) {
  std::string hex;
  std::array<uint8_t, 4> bytes{};
  ASSERT_TRUE(unhex_id(hex_id(hex, std::string_view("\x00}\xff\x10", 4)), bytes));
  EXPECT_EQ(bytes, (std::array<uint8_t, 4>{0x00, 0x7d, 0xff, 0x10}));
  EXPECT_FALSE(unhex_id("007dff1", bytes));    // too short
  EXPECT_FALSE(unhex_id("007dff1000", bytes)); // too long
  EXPECT_FALSE(unhex_id("007DFF10", bytes));   // uppercase: not what hex_id writes
  EXPECT_FALSE(unhex_id("007dfg10", bytes));
}

TEST(ClusterKeys, TheEdgeFieldIsAPrefixOfThatEdgesRecordsOnly) {
  // The tracker register script tells another edge's live record from this
  // edge's by this prefix (docs/cluster.md, "Tracker swarms across edges").
  std::string field, record;
  encode_edge_field(field, "edge-a");
  encode_swarm(record, SwarmRecord{"edge-a", 1, 2, 3, true, -1, "", "", "{}"});
  EXPECT_TRUE(record.starts_with(field));
  encode_owner(record, OwnerRecord{"edge-a", 1, 2, 3, "s", "r", std::string(session_digest_bytes, 'f')});
  EXPECT_TRUE(record.starts_with(field));
  // Another edge whose name starts with this one's is another prefix.
  encode_swarm(record, SwarmRecord{"edge-ab", 1, 2, 3, true, -1, "", "", "{}"});
  EXPECT_FALSE(record.starts_with(field));
}

TEST(ClusterKeys, FieldsRoundTripAnyBytes) {
  std::string out;
  std::string binary("a\0b:|1:x", 8);
  append_field(out, std::string_view(binary));
  append_field(out, std::string_view());
  append_field(out, uint64_t{18446744073709551615ull});
  EXPECT_EQ(out.substr(0, 2), "8:");
  std::string_view f[3];
  ASSERT_TRUE(split_fields(out, f));
  EXPECT_EQ(f[0], binary);
  EXPECT_EQ(f[1], "");
  EXPECT_EQ(f[2], "18446744073709551615");
  std::string_view two[2], four[4];
  EXPECT_FALSE(split_fields(out, two)) << "trailing bytes";
  EXPECT_FALSE(split_fields(out, four)) << "missing field";
}

TEST(ClusterKeys, MalformedFieldsAreRefused) {
  std::string_view f[1];
  for (std::string_view bad : {"", ":", "3:ab", "x:ab", "-1:a", "2ab", "99999999999:a", "1:ab"})
    EXPECT_FALSE(split_fields(bad, f)) << bad;
  EXPECT_FALSE(parse_unsigned("12a"));
  EXPECT_FALSE(parse_unsigned(""));
  EXPECT_FALSE(parse_unsigned("12345678901234567890"));
  EXPECT_EQ(parse_unsigned("0042"), 42u);
}

TEST(ClusterKeys, OwnerRecordRoundTrips) {
  std::string out;
  std::string digest = session_digest("secret");
  EXPECT_EQ(digest, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
  encode_owner(out, OwnerRecord{"edge-a", 3, 17, 4000000000u, "live-42", "720p", digest});
  auto r = decode_owner(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->edge_id, "edge-a");
  EXPECT_EQ(r->shard, 3u);
  EXPECT_EQ(r->slot, 17u);
  EXPECT_EQ(r->generation, 4000000000u);
  EXPECT_EQ(r->stream_id, "live-42");
  EXPECT_EQ(r->rendition, "720p");
  EXPECT_EQ(r->session_digest, digest);
  // The holder is a prefix of the record; the digest its last bytes (the
  // claim script relies on both).
  std::string holder;
  EXPECT_TRUE(out.starts_with(encode_holder(holder, "edge-a", 3, 17, 4000000000u)));
  EXPECT_TRUE(out.ends_with(digest));
  EXPECT_FALSE(decode_owner(out.substr(0, out.size() - 1)));
  std::string d = "64:" + std::string(64, 'a');
  EXPECT_TRUE(decode_owner("6:edge-a1:31:71:11:s1:r" + d));
  EXPECT_FALSE(decode_owner("6:edge-a1:31:71:11:s1:r")) << "no digest";
  EXPECT_FALSE(decode_owner("6:edge-a1:31:71:11:s1:r3:abc")) << "short digest";
  EXPECT_FALSE(decode_owner("6:edge-a1:x1:71:11:s1:r" + d)) << "shard not a number";
  std::string big;
  encode_owner(big, OwnerRecord{"e", 0, 0, 0, "s", "r", digest});
  big.replace(big.find("1:0"), 3, "11:99999999999");  // shard over 32 bits
  EXPECT_FALSE(decode_owner(big));
}

TEST(ClusterKeys, SwarmRecordRoundTripsTopologyWithSeparators) {
  std::string out;
  SwarmRecord in{"edge-b", 1, 2, 3, false, 3320, "eu|west:1", "DE", R"({"region":"eu|west:1","country":"DE","asn":3320})"};
  encode_swarm(out, in);
  auto r = decode_swarm(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->edge_id, "edge-b");
  EXPECT_EQ(r->shard, 1u);
  EXPECT_EQ(r->slot, 2u);
  EXPECT_EQ(r->generation, 3u);
  EXPECT_FALSE(r->accepting_peers);
  EXPECT_EQ(r->asn, 3320);
  EXPECT_EQ(r->region, "eu|west:1");
  EXPECT_EQ(r->country, "DE");
  EXPECT_EQ(r->topology_json, in.topology_json);

  encode_swarm(out, SwarmRecord{"e", 0, 0, 0, true, -1, "", "", "{}"});
  r = decode_swarm(out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->asn, -1);
  EXPECT_TRUE(r->accepting_peers);
  encode_swarm(out, SwarmRecord{"e", 0, 0, 0, true, -1, "", "", "[1]"});
  EXPECT_FALSE(decode_swarm(out)) << "topology must be an object";
}

TEST(ClusterKeys, EnvelopesRoundTrip) {
  std::string out;
  std::string text = R"({"type":"signal","from":"a","kind":"offer","data":"x\r\n5:y"})";
  Envelope s{EnvelopeKind::signal, "edge-a", 1, 2, 3, 4, 5, "peer-b", "live", "\"id-1\"", text};
  encode_envelope(out, s);
  auto e = decode_envelope(out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EnvelopeKind::signal);
  EXPECT_EQ(e->origin_edge, "edge-a");
  EXPECT_EQ(e->sender_shard, 1u);
  EXPECT_EQ(e->sender_slot, 2u);
  EXPECT_EQ(e->sender_generation, 3u);
  EXPECT_EQ(e->target_slot, 4u);
  EXPECT_EQ(e->target_generation, 5u);
  EXPECT_EQ(e->to, "peer-b");
  EXPECT_EQ(e->stream_id, "live");
  EXPECT_EQ(e->ref_raw, "\"id-1\"");
  EXPECT_EQ(e->text, text);

  Envelope f{EnvelopeKind::failed, "edge-a", 1, 2, 3, 0, 0, "peer-b", {}, {}, {}};
  encode_envelope(out, f);
  e = decode_envelope(out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EnvelopeKind::failed);
  EXPECT_EQ(e->to, "peer-b");
  EXPECT_EQ(e->ref_raw, "");

  Envelope r{EnvelopeKind::replace, "edge-b", 0, 0, 0, 7, 9, "peer-c", {}, {}, {}};
  encode_envelope(out, r);
  e = decode_envelope(out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EnvelopeKind::replace);
  EXPECT_EQ(e->origin_edge, "edge-b");
  EXPECT_EQ(e->target_slot, 7u);
  EXPECT_EQ(e->target_generation, 9u);
  EXPECT_EQ(e->to, "peer-c");

  // A signal sent from a cached location, and the same bounced back: the
  // whole signal travels both ways.
  for (EnvelopeKind kind : {EnvelopeKind::signal_cached, EnvelopeKind::bounced}) {
    Envelope c = s;
    c.kind = kind;
    encode_envelope(out, c);
    e = decode_envelope(out);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, kind);
    EXPECT_TRUE(carries_signal(e->kind));
    EXPECT_EQ(e->target_generation, 5u);
    EXPECT_EQ(e->stream_id, "live");
    EXPECT_EQ(e->text, text);
  }
  Envelope m{EnvelopeKind::missed, "edge-a", 1, 2, 3, 7, 9, "peer-c", {}, "\"r\"", {}};
  encode_envelope(out, m);
  e = decode_envelope(out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EnvelopeKind::missed);
  EXPECT_EQ(e->target_slot, 7u);
  EXPECT_EQ(e->target_generation, 9u);
  EXPECT_EQ(e->ref_raw, "\"r\"");
  EXPECT_FALSE(carries_signal(EnvelopeKind::missed));
  EXPECT_FALSE(carries_signal(EnvelopeKind::failed));
  EXPECT_FALSE(carries_signal(EnvelopeKind::replace));

  // Tracker offers and answers carry raw 20-byte ids (any byte) and the text.
  const std::string info_hash("\x00\x01}{\xff" "abcdefghijklmno", 20);
  const std::string pair(40, '\x7f');
  for (EnvelopeKind kind : {EnvelopeKind::tracker_offer, EnvelopeKind::tracker_answer}) {
    Envelope t{kind, "edge-a", 1, 2, 3, 4, 5, std::string_view(info_hash).substr(1, 20 - 1), info_hash, pair,
               "{\"action\":\"announce\"}"};
    encode_envelope(out, t);
    e = decode_envelope(out);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, kind);
    EXPECT_TRUE(carries_signal(kind));
    EXPECT_EQ(e->stream_id, info_hash);
    EXPECT_EQ(e->ref_raw, pair);
    EXPECT_EQ(e->to, std::string_view(info_hash).substr(1, 20 - 1));
    EXPECT_EQ(e->text, "{\"action\":\"announce\"}");
  }

  for (std::string_view bad : {"", "1:X", "1:S6:edge-a", "1:C6:edge-a", "1:O6:edge-a", "garbage"})
    EXPECT_FALSE(decode_envelope(bad)) << bad;
  encode_envelope(out, s);
  out.push_back('!');
  EXPECT_FALSE(decode_envelope(out));
}

}  // namespace
}  // namespace mf::edge::cluster
