// The WebTorrent tracker protocol on a shard (docs/tracker.md): a connection
// that came on the tracker path speaks it instead of the SDK protocol. Its
// messages are parsed on the connection's shard; announces, answers and
// leaves go to the shard that owns the info_hash (edge_messages.h), whose
// TrackerSwarms decides, and ready messages come back to the connections
// they are for.
#include <algorithm>

#include "common/base/log.h"
#include "edge/edge_shard.h"

namespace mf::edge {

uint32_t EdgeShard::tracker_shard(const TrackerId& info_hash) const {
  std::string_view bytes(reinterpret_cast<const char*>(info_hash.data()), info_hash.size());
  return static_cast<uint32_t>((keyed_hash(bytes) >> 7) % shard_.count());
}

void EdgeShard::tracker_fail(PeerSession& s, const TrackerRejection& failure) {
  counters_.tracker.failures++;
  send_text(s, write_tracker_failure(reply_, failure));
  // Repeated failures close the connection, as repeated SDK errors do.
  if (s.errors.record_error(reactor_now(), shared_.settings.error_limit, shared_.settings.error_window_ms))
    s.server->close(s.socket, ws::close_code::policy_violation, "too many errors");
}

void EdgeShard::on_tracker_message(PeerSession& s, std::string_view text) {
  uint64_t now = reactor_now();
  if (!s.bucket.take(shared_.settings.messages_per_second, shared_.settings.message_burst, now)) {
    if (s.rate_drops.record_error(now, shared_.settings.rate_limit_close_after, shared_.settings.error_window_ms)) {
      s.server->close(s.socket, close_code::rate_limited, "rate limit exceeded");
      return;
    }
    counters_.tracker.failures++;
    send_text(s, write_tracker_failure(reply_, TrackerRejection{"rate limited"}));
    return;
  }
  auto parsed = tracker_parser_.parse(text);
  if (!parsed) return tracker_fail(s, parsed.error());
  const TrackerRequest& r = **parsed;
  PeerLocation who = location_of(s);

  if (r.action == TrackerAction::scrape) {
    if (r.full_scrape) {
      counters_.tracker.full_scrapes_refused++;
      return tracker_fail(s, TrackerRejection{"full scrape is not allowed", true, TrackerAction::scrape});
    }
    auto scrape = std::make_unique<TrackerScrape>();
    scrape->who = who;
    scrape->files.resize(r.scrape_count);
    scrape->filled.assign(r.scrape_count, 0);
    for (size_t i = 0; i < r.scrape_count; ++i) scrape->files[i].info_hash = r.scrape_hashes[i];
    if (r.scrape_count == 0) return on_tracker_scrape(std::move(scrape));  // answered here: no files
    uint32_t owner = tracker_shard(scrape->files[0].info_hash);
    if (!send(owner, ScrapeRequest(std::move(scrape))))
      tracker_fail(s, TrackerRejection{"edge busy", true, TrackerAction::scrape});
    return;
  }

  TrackerRejection refusal{{}, true, TrackerAction::announce, true, r.info_hash};
  auto seat = std::find_if(s.tracker_seats.begin(), s.tracker_seats.end(), [&](const PeerSession::TrackerSeat& seat) {
    return seat.info_hash == r.info_hash && seat.peer_id == r.peer_id;
  });
  if (!r.has_answer && r.event != AnnounceEvent::stopped && seat == s.tracker_seats.end()) {
    if (s.tracker_seats.size() >= max_tracker_seats) {
      refusal.reason = "too many swarms on one connection";
      return tracker_fail(s, refusal);
    }
    // Recorded before the swarm's verdict: a close always sends the leave,
    // which the swarm ignores unless this connection holds the peer_id.
    s.tracker_seats.push_back({r.info_hash, r.peer_id});
  }
  if (!r.has_answer && r.event == AnnounceEvent::stopped && seat != s.tracker_seats.end()) s.tracker_seats.erase(seat);

  uint32_t owner = tracker_shard(r.info_hash);
  // A request on a swarm of this shard is decided here at once, in this
  // shard's own packet; others travel in a new one, freed where decided.
  std::unique_ptr<TrackerPacket> packet =
      owner == shard_.id() && tracker_spare_ ? std::move(tracker_spare_) : std::make_unique<TrackerPacket>();
  packet->offer_ids.clear();
  packet->offer_ends.clear();
  packet->raw.clear();
  packet->has_answer = false;
  packet->who = who;
  packet->info_hash = r.info_hash;
  packet->peer_id = r.peer_id;
  packet->event = r.event;
  packet->seeder = r.has_left && r.left == 0;
  if (r.has_answer) {
    packet->has_answer = true;
    packet->to_peer_id = r.to_peer_id;
    packet->answer_offer_id = r.answer_offer_id;
    packet->raw.assign(r.answer_raw);
  } else {
    // Only the offers that can be relayed travel.
    size_t offers = std::min<size_t>(r.offer_count, shared_.settings.tracker.max_offers);
    packet->offer_ids.reserve(offers);
    packet->offer_ends.reserve(offers);
    for (size_t i = 0; i < offers; ++i) {
      packet->offer_ids.push_back(r.offers[i].offer_id);
      packet->raw.append(r.offers[i].offer_raw);
      packet->offer_ends.push_back(static_cast<uint32_t>(packet->raw.size()));
    }
  }
  if (owner == shard_.id()) {
    tracker_spare_ = on_tracker_request(std::move(packet));
    return;
  }
  if (!send(owner, TrackerRequestMessage(std::move(packet)))) {
    refusal.reason = "edge busy";
    tracker_fail(s, refusal);
  }
}

void EdgeShard::tracker_deliver(const PeerLocation& who, std::string_view text, TrackerDelivery::Kind kind) {
  if (text.empty()) {
    if ((counters_.replies_unsent++ & 1023) == 0)
      MF_LOG_ERROR("shard {}: a tracker message did not fit the {}-byte reply buffer and was not sent", shard_.id(),
                   reply_.size());
    return;
  }
  if (who.shard == shard_.id()) return deliver_tracker_text(who, text, kind);
  if (tracker_outbox_.size() < shard_.count()) tracker_outbox_.resize(shard_.count());
  std::unique_ptr<TrackerDelivery>& batch = tracker_outbox_[who.shard];
  if (!batch) batch = std::make_unique<TrackerDelivery>();
  batch->text.append(text);
  batch->items.push_back({who, static_cast<uint32_t>(batch->text.size()), kind});
}

void EdgeShard::flush_tracker_deliveries() {
  for (uint32_t shard = 0; shard < tracker_outbox_.size(); ++shard)
    if (tracker_outbox_[shard]) send(shard, std::move(tracker_outbox_[shard]));
}

bool EdgeShard::tracker_deliveries_waiting() const {
  return std::ranges::any_of(tracker_outbox_,
                             [](const std::unique_ptr<TrackerDelivery>& batch) { return batch != nullptr; });
}

void EdgeShard::deliver_tracker_text(const PeerLocation& who, std::string_view text, TrackerDelivery::Kind kind) {
  PeerSession* s = session_at(who);
  if (s == nullptr || !s->tracker || s->state != PeerState::connected) return;  // gone: an offer just expires
  if (kind == TrackerDelivery::Kind::offer) counters_.tracker.offers_relayed++;
  if (kind == TrackerDelivery::Kind::answer) counters_.tracker.answers_relayed++;
  if (kind == TrackerDelivery::Kind::scrape) counters_.tracker.scrapes++;
  s->server->send_text(s->socket, text);
}

std::unique_ptr<TrackerPacket> EdgeShard::on_tracker_request(std::unique_ptr<TrackerPacket> m) {
  decide_tracker_request(m);
  return m;
}

void EdgeShard::decide_tracker_request(std::unique_ptr<TrackerPacket>& m) {
  uint64_t now = reactor_now();
  TrackerRejection refusal{{}, true, TrackerAction::announce, true, m->info_hash};
  if (m->has_answer) {
    auto route = tracker_swarms_.answer(m->info_hash, m->peer_id, m->who, m->to_peer_id, m->answer_offer_id, now);
    if (!route) {
      counters_.tracker.answers_refused++;
      counters_.tracker.failures++;
      refusal.reason = tracker_refusal_text(route.error());
      return tracker_deliver(m->who, write_tracker_failure(reply_, refusal), TrackerDelivery::Kind::reply);
    }
    if (route->edge != 0) return tracker_publish_answer(*route, *m);
    return tracker_deliver(route->who, write_tracker_answer(reply_, m->info_hash, m->peer_id, m->raw, m->answer_offer_id),
                           TrackerDelivery::Kind::answer);
  }
  counters_.tracker.announces++;
  tracker_offer_ids_.assign(m->offer_ids.begin(), m->offer_ids.end());
  auto result = tracker_swarms_.announce(m->info_hash, m->peer_id, m->who, m->event, m->seeder, tracker_offer_ids_,
                                         tracker_targets_, now);
  if (!result) {
    if (result.error() == TrackerRefusal::peer_id_taken) counters_.tracker.peer_id_taken++;
    counters_.tracker.failures++;
    refusal.reason = tracker_refusal_text(result.error());
    return tracker_deliver(m->who, write_tracker_failure(reply_, refusal), TrackerDelivery::Kind::reply);
  }
  if ((result->joined || result->seeder_changed) && cluster_)
    cluster_->tracker_register(m->info_hash, m->peer_id, m->who, m->seeder || m->event == AnnounceEvent::completed);
  if (result->left && cluster_) cluster_->tracker_unregister(m->info_hash, m->peer_id, m->who);
  tracker_deliver(m->who,
                  write_tracker_announce_reply(reply_, m->info_hash, result->complete, result->incomplete,
                                               shared_.settings.tracker.interval_s),
                  TrackerDelivery::Kind::reply);
  std::string_view raw = m->raw;
  for (size_t i = 0; i < result->targets; ++i) {
    uint32_t begin = i == 0 ? 0 : m->offer_ends[i - 1];
    std::string_view offer = raw.substr(begin, m->offer_ends[i] - begin);
    const TrackerTarget& target = tracker_targets_[i];
    tracker_deliver(target.who, write_tracker_offer(reply_, m->info_hash, m->peer_id, offer, m->offer_ids[i]),
                    TrackerDelivery::Kind::offer);
  }
  // Offers no member here took go to members on other edges.
  if (result->targets < m->offer_ids.size() && cluster_) cluster_->tracker_offers(std::move(m), result->targets);
}

void EdgeShard::on(std::unique_ptr<TrackerDelivery> m) {
  std::string_view text = m->text;
  uint32_t begin = 0;
  for (const TrackerDelivery::Item& item : m->items) {
    deliver_tracker_text(item.who, text.substr(begin, item.end - begin), item.kind);
    begin = item.end;
  }
}

void EdgeShard::tracker_give_up(PeerSession& s) {
  PeerLocation who = location_of(s);
  for (const auto& seat : s.tracker_seats) {
    auto leave = std::make_unique<TrackerPacket>();
    leave->who = who;
    leave->info_hash = seat.info_hash;
    leave->peer_id = seat.peer_id;
    uint32_t owner = tracker_shard(seat.info_hash);
    send(owner, TrackerLeave(std::move(leave)));
  }
  s.tracker_seats.clear();
}

void EdgeShard::on_tracker_leave(std::unique_ptr<TrackerPacket> m) {
  if (tracker_swarms_.leave(m->info_hash, m->peer_id, m->who))
    if (cluster_) cluster_->tracker_unregister(m->info_hash, m->peer_id, m->who);
}

void EdgeShard::tracker_expire() {
  tracker_removed_.clear();
  tracker_swarms_.expire(reactor_now(), &tracker_removed_);
  if (cluster_)
    for (const TrackerMemberRef& gone : tracker_removed_) cluster_->tracker_unregister(gone.info_hash, gone.peer_id, gone.who);
}

void EdgeShard::on_tracker_scrape(std::unique_ptr<TrackerScrape> m) {
  const uint32_t self = shard_.id();
  size_t next = m->files.size();
  for (size_t i = 0; i < m->files.size(); ++i) {
    if (m->filled[i]) continue;
    if (tracker_shard(m->files[i].info_hash) == self) {
      TrackerScrapeCounts counts = tracker_swarms_.scrape(m->files[i].info_hash, reactor_now());
      m->files[i].complete = counts.complete;
      m->files[i].incomplete = counts.incomplete;
      m->files[i].downloaded = counts.downloaded;
      m->filled[i] = 1;
    } else if (next == m->files.size()) {
      next = i;
    }
  }
  if (next < m->files.size()) {
    uint32_t owner = tracker_shard(m->files[next].info_hash);
    send(owner, ScrapeHop(std::move(m)));
    return;
  }
  // Every file counted: the reply goes as every ready tracker message does,
  // behind what this shard made for the connection before.
  tracker_deliver(m->who, write_tracker_scrape(reply_, m->files), TrackerDelivery::Kind::scrape);
}

}  // namespace mf::edge
