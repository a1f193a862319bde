#pragma once
// The WebTorrent tracker swarms one shard owns (those whose info_hash hashes
// to it; docs/tracker.md): who announced on each, bound to which connection,
// and the offers relayed that may still be answered. Matching is the SDK
// streams' (edge/swarm.h): offers go to the members with the fewest current
// proposals, never to the sender, never outside the swarm. Pure: no IO, no
// clock (time is passed in).
#include <array>
#include <cstdint>
#include <cstring>
#include <expected>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/keyed_hash.h"
#include "edge/peer_directory.h"
#include "edge/swarm.h"
#include "edge/tracker_message.h"

namespace mf::edge {

// Ids are client-chosen: hashed under the process key (common/keyed_hash.h)
// so nobody can aim collisions at a table or pile swarms onto one shard.
struct TrackerIdHash {
  size_t operator()(const TrackerId& id) const {
    return static_cast<size_t>(keyed_hash(std::string_view(reinterpret_cast<const char*>(id.data()), id.size())));
  }
};

struct TrackerLimits {
  uint32_t max_offers = 10;           // offers relayed per announce
  uint32_t interval_s = 120;          // `interval` in announce replies
  uint32_t offer_ttl_ms = 120'000;    // an offer may be answered this long
  uint32_t peer_ttl_ms = 180'000;     // 1.5 intervals without an announce: gone
};

// A peer an offer goes to.
struct TrackerTarget {
  TrackerId peer_id{};
  PeerLocation who;
};

enum class TrackerRefusal : uint8_t {
  peer_id_taken,   // the peer_id is bound to another connection in this swarm
  unknown_peer,    // an answer from a peer that has not announced here on this connection
  no_such_offer,   // no outstanding offer with that offer_id from to_peer_id to the answerer
  offerer_gone,    // the offer was outstanding but its sender left
};
std::string_view tracker_refusal_text(TrackerRefusal refusal);

struct TrackerAnnounceResult {
  uint32_t complete = 0, incomplete = 0;
  size_t targets = 0;  // entries written to the caller's span
};

struct TrackerScrapeCounts {
  uint32_t complete = 0, incomplete = 0;
  uint64_t downloaded = 0;
};

struct TrackerTotals {
  uint64_t swarms = 0, peers = 0, seeders = 0, outstanding_offers = 0;
};

class TrackerSwarms {
 public:
  TrackerSwarms(uint64_t seed, TrackerLimits limits);

  // An announce by `peer_id` on connection `who`. Binds the peer_id to `who`
  // in this swarm (refused when another connection holds it), records
  // `seeder` (left == 0 or completed), removes it on `stopped`. Then picks up
  // to min(offer_ids.size(), max_offers, targets.size()) members for the
  // offers, in order, and records each (target, sender, offer_id) as
  // outstanding until now + offer_ttl_ms.
  std::expected<TrackerAnnounceResult, TrackerRefusal> announce(const TrackerId& info_hash, const TrackerId& peer_id,
                                                                PeerLocation who, AnnounceEvent event, bool seeder,
                                                                std::span<const TrackerId> offer_ids,
                                                                std::span<TrackerTarget> targets, uint64_t now_ms);
  // An answer by `answerer` (on `who`) to the offer `offer_id` of `offerer`:
  // allowed once, only while that offer is outstanding; gives the offerer's
  // connection.
  std::expected<PeerLocation, TrackerRefusal> answer(const TrackerId& info_hash, const TrackerId& answerer,
                                                     PeerLocation who, const TrackerId& offerer,
                                                     const TrackerId& offer_id, uint64_t now_ms);
  // The connection `who` closed: its peer leaves if it still holds peer_id.
  void leave(const TrackerId& info_hash, const TrackerId& peer_id, PeerLocation who);
  // Drops peers silent for peer_ttl_ms and offers past their expiry.
  void expire(uint64_t now_ms);

  TrackerScrapeCounts scrape(const TrackerId& info_hash) const;
  TrackerTotals totals() const;
  size_t swarm_count() const { return swarms_.size(); }
  const TrackerLimits& limits() const { return limits_; }

 private:
  struct Peer {
    PeerLocation who;
    MemberHandle handle;
    bool seeder = false;
    uint64_t last_announce_ms = 0;
  };
  // recipient, sender, offer_id
  using OfferKey = std::array<uint8_t, 3 * tracker_id_bytes>;
  struct OfferKeyHash {
    size_t operator()(const OfferKey& key) const;
  };
  struct Swarm_ {
    explicit Swarm_(uint64_t seed) : matching(seed) {}
    Swarm matching;
    std::unordered_map<TrackerId, Peer, TrackerIdHash> peers;
    std::unordered_map<OfferKey, uint64_t, OfferKeyHash> offers;  // expiry (ms)
    uint32_t seeders = 0;
    uint64_t downloaded = 0;  // `completed` events
  };
  static OfferKey offer_key(const TrackerId& recipient, const TrackerId& sender, const TrackerId& offer_id);
  void remove_peer(Swarm_& swarm, std::unordered_map<TrackerId, Peer, TrackerIdHash>::iterator peer);
  void drop_if_empty(std::unordered_map<TrackerId, Swarm_, TrackerIdHash>::iterator swarm);

  TrackerLimits limits_;
  Rng rng_;
  uint64_t seed_;
  std::unordered_map<TrackerId, Swarm_, TrackerIdHash> swarms_;
  std::array<MemberHandle, Swarm::max_pick> picked_{};
};

}  // namespace mf::edge
