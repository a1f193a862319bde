#pragma once
// The WebTorrent tracker swarms one shard owns (those whose info_hash hashes
// to it; docs/tracker.md): who announced on each, bound to which connection,
// and the offers relayed that may still be answered. Matching is the SDK
// streams' (edge/swarm.h): offers go to the members with the fewest current
// proposals, never to the sender, never outside the swarm. Pure: no IO, no
// clock (time is passed in).
//
// Costs (docs/tracker.md, "Where the work happens"): peers and offers live in
// hash tables whose nodes come from one pool per shard, so the steady churn of
// offers (ten made per announce, each gone at its answer) takes no heap
// allocation once the pool has grown to the peak; the pool keeps that peak.
// Every peer and every offer also sits in an age list (peers by last
// announce, offers by when they were relayed; each kind shares one TTL), so
// expire() touches only what has expired instead of scanning every swarm.
#include <array>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/base/age_list.h"
#include "common/base/keyed_hash.h"
#include "edge/peer_directory.h"
#include "edge/swarm.h"
#include "edge/tracker_message.h"

namespace mf::edge {

// Ids are client-chosen: hashed under the process key (common/base/keyed_hash.h)
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
  // In a cluster (docs/cluster.md, "Tracker swarms across edges"): counts of
  // a swarm's members on every edge, read from Valkey, are used this long
  // after they arrive; then the local counts again (Valkey down or slow).
  // 0: no cluster, the counts are always this edge's.
  uint32_t cluster_counts_ttl_ms = 0;
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
  size_t targets = 0;   // entries written to the caller's span
  bool joined = false;  // the peer was not a member before this announce
  bool left = false;    // `stopped` removed the peer
  bool seeder_changed = false;  // a member that was a leecher is a seeder now, or back
};

// Where an answer goes: to a connection of this edge, or (edge != 0) back to
// the shard `shard` of another edge of the cluster, whose offer it answers
// (docs/cluster.md, "Tracker swarms across edges").
struct TrackerAnswerRoute {
  PeerLocation who;     // edge == 0
  uint32_t edge = 0;    // 0: this edge; otherwise TrackerSwarms::edge_name(edge)
  uint32_t shard = 0;   // edge != 0: the offerer's swarm shard on that edge
};

// A member of a swarm, as the cluster's presence records name it.
struct TrackerMemberRef {
  TrackerId info_hash{}, peer_id{};
  PeerLocation who;
  bool seeder = false;
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
  // gives the offerer's connection, or the edge and shard an offer from
  // another edge came from.
  std::expected<TrackerAnswerRoute, TrackerRefusal> answer(const TrackerId& info_hash, const TrackerId& answerer,
                                                           PeerLocation who, const TrackerId& offerer,
                                                           const TrackerId& offer_id, uint64_t now_ms);
  // The connection `who` closed: its peer leaves if it still holds peer_id
  // (true).
  bool leave(const TrackerId& info_hash, const TrackerId& peer_id, PeerLocation who);
  // Drops peers silent for peer_ttl_ms and offers past their expiry; the
  // peers dropped are appended to `removed` when given.
  void expire(uint64_t now_ms, std::vector<TrackerMemberRef>* removed = nullptr);

  // ---- swarms across edges (docs/cluster.md, "Tracker swarms across edges") ----
  // Edge names are interned: an offer records a small index, not a string.
  // 0 when the table is full (max_edges names): the caller drops the offer.
  uint32_t edge_index(std::string_view edge_id);
  std::string_view edge_name(uint32_t index) const { return edges_[index - 1]; }
  static constexpr size_t max_edges = 1024;
  // `offerer` (a member here) relayed an offer to `recipient`, a member on
  // edge `edge`: outstanding until now + offer_ttl_ms. False when the
  // offerer is no member here any more (nothing is recorded).
  bool offer_sent_to_edge(const TrackerId& info_hash, const TrackerId& offerer, PeerLocation offerer_who,
                          const TrackerId& recipient, const TrackerId& offer_id, uint32_t edge, uint64_t now_ms);
  // An offer from `offerer` on edge `edge` (its swarm on shard `shard`
  // there) to `recipient`: recorded as outstanding when the recipient is a
  // member here (answer() then routes its answer back there); gives the
  // recipient's connection. Nullopt: not a member, the offer is dropped.
  std::optional<PeerLocation> offer_from_edge(const TrackerId& info_hash, const TrackerId& recipient,
                                              const TrackerId& offerer, const TrackerId& offer_id, uint32_t edge,
                                              uint32_t shard, uint64_t now_ms);
  // An answer from `answerer` on edge `edge` to the offer `offer_id` that
  // `offerer` (a member here) sent there: allowed once, only while that
  // offer is outstanding and went to that edge; gives the offerer's
  // connection.
  std::expected<PeerLocation, TrackerRefusal> answer_from_edge(const TrackerId& info_hash, const TrackerId& answerer,
                                                               const TrackerId& offerer, const TrackerId& offer_id,
                                                               uint32_t edge, uint64_t now_ms);
  bool is_member(const TrackerId& info_hash, const TrackerId& peer_id) const;
  // The member `peer_id` of the swarm, if it is one.
  std::optional<TrackerMemberRef> member(const TrackerId& info_hash, const TrackerId& peer_id) const;
  // Every member, for the presence refresh: fn(info_hash, peer_id, who, seeder).
  template <typename Fn>
  void for_each_member(Fn&& fn) const {
    for (const auto& [hash, swarm] : swarms_)
      for (const auto& [id, peer] : swarm.peers) fn(hash, id, peer.who, peer.seeder);
  }
  // The swarm's live members on every edge, as Valkey counted them at
  // `now_ms` (seeders among members): announce replies and scrapes report
  // them, never below this edge's own counts, for cluster_counts_ttl_ms.
  // Ignored when the swarm has no member here (nothing would refresh it).
  void cluster_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members, uint64_t now_ms);

  TrackerScrapeCounts scrape(const TrackerId& info_hash, uint64_t now_ms) const;
  TrackerTotals totals() const;
  size_t swarm_count() const { return swarms_.size(); }
  const TrackerLimits& limits() const { return limits_; }

 private:
  struct Swarm_;
  struct Peer : AgeLinks<Peer> {
    PeerLocation who;
    MemberHandle handle;
    bool seeder = false;
    uint64_t last_announce_ms = 0;
    Swarm_* swarm = nullptr;          // for expiry from the age list
    const TrackerId* id = nullptr;    // the key of this peer's table node
  };
  // recipient, sender, offer_id
  using OfferKey = std::array<uint8_t, 3 * tracker_id_bytes>;
  struct OfferKeyHash {
    size_t operator()(const OfferKey& key) const;
  };
  // An outstanding offer: between two members here (edge 0), sent to a
  // member on another edge (to_edge), or received from one (from_edge: the
  // answer goes back to `shard` there).
  enum class OfferWay : uint8_t { local, to_edge, from_edge };
  struct Offer : AgeLinks<Offer> {
    uint64_t expires_ms = 0;
    OfferWay way = OfferWay::local;
    uint32_t edge = 0;
    uint32_t shard = 0;
    Swarm_* swarm = nullptr;          // for expiry from the age list
    const OfferKey* key = nullptr;    // the key of this offer's table node
  };
  using PeerTable = std::pmr::unordered_map<TrackerId, Peer, TrackerIdHash>;
  using OfferTable = std::pmr::unordered_map<OfferKey, Offer, OfferKeyHash>;
  struct Swarm_ {
    Swarm_(uint64_t seed, std::pmr::memory_resource* pool) : matching(seed), peers(pool), offers(pool) {}
    Swarm matching;
    const TrackerId* info_hash = nullptr;  // the key of this swarm's table node
    PeerTable peers;
    OfferTable offers;
    uint32_t seeders = 0;
    uint64_t downloaded = 0;  // `completed` events
    // The whole cluster's counts (cluster_counts), valid until counts_until_ms.
    uint32_t cluster_complete = 0, cluster_incomplete = 0;
    uint64_t cluster_counts_until_ms = 0;
  };
  // complete and incomplete as replies report them: this edge's, or the
  // cluster's while they are fresh (never below this edge's).
  std::pair<uint32_t, uint32_t> reported_counts(const Swarm_& swarm, uint64_t now_ms) const;
  using SwarmTable = std::unordered_map<TrackerId, Swarm_, TrackerIdHash>;
  static OfferKey offer_key(const TrackerId& recipient, const TrackerId& sender, const TrackerId& offer_id);
  // Records (or renews) an outstanding offer: newest in the offers' age list.
  void record_offer(Swarm_& swarm, const OfferKey& key, OfferWay way, uint32_t edge, uint32_t shard,
                    uint64_t now_ms);
  void erase_offer(Swarm_& swarm, OfferTable::iterator offer);
  void remove_peer(Swarm_& swarm, PeerTable::iterator peer);
  // Erases a swarm whose last peer left, with the offers it still holds.
  void drop_if_empty(SwarmTable::iterator swarm);

  TrackerLimits limits_;
  // Declared before the tables whose nodes it holds: destroyed after them.
  std::pmr::unsynchronized_pool_resource pool_;
  AgeList<Peer> peer_ages_;
  AgeList<Offer> offer_ages_;
  Rng rng_;
  uint64_t seed_;
  SwarmTable swarms_;
  std::array<MemberHandle, Swarm::max_pick> picked_{};
  std::vector<std::string> edges_;  // interned edge names, index + 1
};

}  // namespace mf::edge
