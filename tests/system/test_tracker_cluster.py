"""WebTorrent tracker swarms across edges (docs/cluster.md, "Tracker swarms
across edges"): two real mf-edge processes (two shards each) sharing a real
redis-server, with independent python3-websockets tracker clients on each.

Covers: an offer from a peer on one edge reaching a peer of the same
info_hash on the other, both ways, and its answer routed back; an answer is
accepted once, only from the peer the offer went to; another swarm's peers
never get the offers; members are refreshed in Valkey; `stopped`, a closed
connection and expiry remove the peer from Valkey, so offers no longer go to
it; `complete` and `incomplete` in announce replies and scrapes count the
swarm on both edges, and follow a completion, a `stopped` and a close on the
other edge; a peer_id held on one edge is refused on the other until it is
free; offers across edges go to the members with the fewest offers first."""

import asyncio
import contextlib
import unittest

from edge_process import EXPECT_TIMEOUT_S, AdminEdge, wait_until
from redis_process import RedisClient, RedisServer
from test_cross_edge import TwoEdgeCluster, metric
from test_tracker import announce, binary_id, offers, open_peer, run_with_stack

TIMEOUT_S = EXPECT_TIMEOUT_S


def hex_id(text):
    return text.encode("latin-1").hex()


def members(redis, info_hash):
    with RedisClient(redis.port) as r:
        return set(r.command("ZRANGE", f"mf:{{t:{hex_id(info_hash)}}}:idx", "0", "-1"))


async def registered(redis, info_hash, peer_id, present=True):
    """Until the peer's presence in Valkey is as wanted (the edge writes it
    after its reply)."""
    async def check():
        while (hex_id(peer_id) in members(redis, info_hash)) != present:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(check(), TIMEOUT_S)


async def counts_become(peer, info_hash, want):
    """Scrapes through `peer` until the swarm's (complete, incomplete) are
    `want`: the cluster's counts reach an edge with the reply to one of its
    registrations or removals, or with the swarm's next refresh."""
    async def check():
        while True:
            _, reply = await peer.sync(info_hash)
            file = reply["files"][info_hash]
            if (file["complete"], file["incomplete"]) == want:
                return
            await asyncio.sleep(0.02)
    await asyncio.wait_for(check(), TIMEOUT_S)


async def started(redis, peer, info_hash, peer_id, **fields):
    """Announces `peer_id` as started through `peer` and waits until its
    presence is in Valkey; the announce reply."""
    reply = await peer.request(announce(info_hash, peer_id, event="started", **fields))
    await registered(redis, info_hash, peer_id)
    return reply


def holder_edge(redis, info_hash, peer_id):
    """The record of the peer in the swarm's presence (names its edge), or None."""
    with RedisClient(redis.port) as r:
        return r.command("HGET", f"mf:{{t:{hex_id(info_hash)}}}:rec", hex_id(peer_id))


class TrackerClusterCase(unittest.TestCase):
    async def open(self, stack, edge):
        return await open_peer(stack, edge.ws_url("/announce"))

    async def started_members(self, stack, edge, info_hash, count):
        """`count` peers on `edge`, each started in the swarm and present in
        Valkey: (peers, peer ids)."""
        peers = [await self.open(stack, edge) for _ in range(count)]
        ids = [binary_id() for _ in peers]
        for peer, peer_id in zip(peers, ids):
            await started(self.redis, peer, info_hash, peer_id)
        return peers, ids

    def run_async(self, body):
        run_with_stack(body)


class TrackerAcrossEdges(TwoEdgeCluster, TrackerClusterCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Every shard of each edge has read the other as alive too (only live
        # edges' members are offered to).
        wait_until(lambda: all(metric(e, "mf_edge_valkey_live_edges") == 2 for e in (cls.a, cls.b)),
                   what="both edges alive for every shard")

    def test_offers_cross_edges_both_ways_and_answers_route_back(self):
        async def body(stack):
            info_hash = binary_id("x-edge-")
            pa, pb = await self.open(stack, self.a), await self.open(stack, self.b)
            id_a, id_b = binary_id(), binary_id()
            reply = await pb.request(announce(info_hash, id_b, event="started"))
            self.assertEqual((reply["complete"], reply["incomplete"]), (0, 1))
            await registered(self.redis, info_hash, id_b)
            offers_before = metric(self.a, "mf_edge_tracker_offers_to_edges_total")
            # a announces with 3 offers: the only other member is on edge b,
            # so one offer goes there (one per member) and the rest go nowhere.
            sent = offers(3)
            reply = await pa.request(announce(info_hash, id_a, event="started", offers=sent))
            self.assertEqual(reply["info_hash"], info_hash)
            offer = await pb.recv()
            self.assertEqual(offer, {"action": "announce", "info_hash": info_hash, "peer_id": id_a,
                                     "offer": sent[0]["offer"], "offer_id": sent[0]["offer_id"]})
            self.assertEqual(metric(self.a, "mf_edge_tracker_offers_to_edges_total"), offers_before + 1)
            answer = {"type": "answer", "sdp": "v=0\r\nfrom-b"}
            # An answer to an offer b never got is refused on b.
            failure = await pb.request(announce(info_hash, id_b, to_peer_id=id_a, answer=answer,
                                                offer_id=sent[1]["offer_id"]))
            self.assertEqual(failure["failure reason"], "answer to no outstanding offer")
            await pb.send(announce(info_hash, id_b, to_peer_id=id_a, answer=answer, offer_id=sent[0]["offer_id"]))
            relayed = await pa.recv()
            self.assertEqual(relayed, {"action": "announce", "info_hash": info_hash, "peer_id": id_b,
                                       "answer": answer, "offer_id": sent[0]["offer_id"]})
            # Once only.
            failure = await pb.request(announce(info_hash, id_b, to_peer_id=id_a, answer=answer,
                                                offer_id=sent[0]["offer_id"]))
            self.assertEqual(failure["failure reason"], "answer to no outstanding offer")
            # The other way: b's offer reaches a, a's answer reaches b.
            await registered(self.redis, info_hash, id_a)
            sent_b = offers(1, tag="b")
            await pb.request(announce(info_hash, id_b, offers=sent_b))
            offer = await pa.recv()
            self.assertEqual((offer["peer_id"], offer["offer"], offer["offer_id"]),
                             (id_b, sent_b[0]["offer"], sent_b[0]["offer_id"]))
            back = {"type": "answer", "sdp": "v=0\r\nfrom-a"}
            await pa.send(announce(info_hash, id_a, to_peer_id=id_b, answer=back, offer_id=sent_b[0]["offer_id"]))
            relayed = await pb.recv()
            self.assertEqual((relayed["peer_id"], relayed["answer"], relayed["offer_id"]),
                             (id_a, back, sent_b[0]["offer_id"]))
            self.assertGreaterEqual(metric(self.a, "mf_edge_tracker_answers_to_edges_total"), 1)
            self.assertGreaterEqual(metric(self.b, "mf_edge_tracker_answers_to_edges_total"), 1)
        self.run_async(body)

    def test_offers_stay_in_their_swarm_and_go_to_distinct_peers(self):
        async def body(stack):
            info_hash, other_hash = binary_id("swarm-"), binary_id("other-")
            pa = await self.open(stack, self.a)
            outsider = await self.open(stack, self.b)
            await started(self.redis, outsider, other_hash, binary_id())
            bs, _ = await self.started_members(stack, self.b, info_hash, 3)
            id_a = binary_id()
            sent = offers(5)
            await pa.request(announce(info_hash, id_a, event="started", offers=sent))
            got = [await peer.recv() for peer in bs]
            # Each member on b gets one offer, each a different one.
            self.assertEqual(len({o["offer_id"] for o in got}), 3)
            self.assertTrue({o["offer_id"] for o in got} <= {s["offer_id"] for s in sent})
            # The other swarm's peer got nothing (its messages before its scrape
            # reply: replies to one connection keep their order).
            before, _ = await outsider.sync(other_hash)
            self.assertEqual(before, [])
        self.run_async(body)

    def test_offers_across_edges_go_to_the_fewest_offered_first(self):
        async def body(stack):
            info_hash = binary_id("fewest-")
            bs, _ = await self.started_members(stack, self.b, info_hash, 3)
            pa, id_a = await self.open(stack, self.a), binary_id()
            # Three announces of one offer each: the members of b in order of
            # the fewest offers, so one each (a random pick would repeat one).
            for round in range(3):
                event = {"event": "started"} if round == 0 else {}
                await pa.request(announce(info_hash, id_a, offers=offers(1, tag=f"r{round}"), **event))
            got = [await peer.recv() for peer in bs]
            self.assertTrue(all("offer" in o for o in got))
            for peer in bs:
                before, _ = await peer.sync(info_hash)
                self.assertEqual(before, [])
        self.run_async(body)

    def test_members_are_refreshed_in_valkey(self):
        async def body(stack):
            info_hash, peer_id = binary_id("refresh-"), binary_id()
            peer = await self.open(stack, self.a)
            await started(self.redis, peer, info_hash, peer_id)

            def expiry():
                with RedisClient(self.redis.port) as r:
                    score = r.command("ZSCORE", f"mf:{{t:{hex_id(info_hash)}}}:idx", hex_id(peer_id))
                    return float(score) if score is not None else None
            first = expiry()
            self.assertIsNotNone(first)
            # The edge's refresh pushes the member's expiry on, with no announce.
            wait_until(lambda: (expiry() or 0) > first, what="the member's expiry refreshed")
            with RedisClient(self.redis.port) as r:
                record = r.command("HGET", f"mf:{{t:{hex_id(info_hash)}}}:rec", hex_id(peer_id))
            self.assertIn("edge-a", record)
        self.run_async(body)

    def test_stopped_and_closed_peers_leave_the_cluster_swarm(self):
        async def body(stack):
            info_hash = binary_id("leave-")
            pa = await self.open(stack, self.a)
            stopper, closer, stayer = [await self.open(stack, self.b) for _ in range(3)]
            id_stop, id_close, id_stay = binary_id(), binary_id(), binary_id()
            for peer, peer_id in ((stopper, id_stop), (closer, id_close), (stayer, id_stay)):
                await started(self.redis, peer, info_hash, peer_id)
            await stopper.request(announce(info_hash, id_stop, event="stopped"))
            await registered(self.redis, info_hash, id_stop, present=False)
            await closer.ws.close()
            await registered(self.redis, info_hash, id_close, present=False)
            self.assertEqual(members(self.redis, info_hash), {hex_id(id_stay)})
            # a's offers now reach the one peer left, and not the stopped one.
            await pa.request(announce(info_hash, binary_id(), event="started", offers=offers(3)))
            offer = await stayer.recv()
            self.assertEqual(offer["action"], "announce")
            self.assertIn("offer", offer)
            before, _ = await stopper.sync(info_hash)
            self.assertEqual(before, [])
        self.run_async(body)


    def test_counts_cover_the_swarm_on_every_edge(self):
        async def body(stack):
            info_hash = binary_id("count-")
            seeder, leecher_a = await self.open(stack, self.a), await self.open(stack, self.a)
            leecher_b, stayer_b = await self.open(stack, self.b), await self.open(stack, self.b)
            id_s, id_la, id_lb, id_sb = binary_id(), binary_id(), binary_id(), binary_id()
            await seeder.request(announce(info_hash, id_s, event="started", left=0))
            for peer, peer_id in ((leecher_a, id_la), (leecher_b, id_lb), (stayer_b, id_sb)):
                await peer.request(announce(info_hash, peer_id, event="started", left=1000))
            for peer_id in (id_s, id_la, id_lb, id_sb):
                await registered(self.redis, info_hash, peer_id)
            # 1 seeder and 3 leechers over two edges, as each edge counts them
            # in scrapes and announce replies.
            await counts_become(stayer_b, info_hash, (1, 3))
            await counts_become(seeder, info_hash, (1, 3))
            reply = await stayer_b.request(announce(info_hash, id_sb, left=1000))
            self.assertEqual((reply["complete"], reply["incomplete"]), (1, 3))
            reply = await seeder.request(announce(info_hash, id_s, left=0))
            self.assertEqual((reply["complete"], reply["incomplete"]), (1, 3))
            # A leecher on a completes: a seeder on b's counts too.
            await leecher_a.request(announce(info_hash, id_la, event="completed", left=0))
            await counts_become(stayer_b, info_hash, (2, 2))
            # `stopped` on b: gone from a's counts.
            await leecher_b.request(announce(info_hash, id_lb, event="stopped"))
            await counts_become(seeder, info_hash, (2, 1))
            # A close on a: gone from b's counts.
            await seeder.ws.close()
            await counts_become(stayer_b, info_hash, (1, 1))
            reply = await stayer_b.request(announce(info_hash, id_sb, left=1000))
            self.assertEqual((reply["complete"], reply["incomplete"]), (1, 1))
        self.run_async(body)

    def test_a_peer_id_held_on_another_edge_is_refused(self):
        async def body(stack):
            info_hash, peer_id = binary_id("bind-"), binary_id()
            holder = await self.open(stack, self.a)
            await started(self.redis, holder, info_hash, peer_id)
            taken_before = metric(self.b, "mf_edge_tracker_peer_id_taken_total")
            second = await self.open(stack, self.b)
            await second.send(announce(info_hash, peer_id, event="started"))
            # b replies at once (no member of its own holds the peer_id), then
            # refuses when Valkey says that a holds it.
            messages = [await second.recv()]
            while "failure reason" not in messages[-1]:
                messages.append(await second.recv())
            self.assertEqual(messages[-1], {"failure reason": "peer_id in use by another connection",
                                            "action": "announce", "info_hash": info_hash})
            self.assertTrue(all("interval" in m for m in messages[:-1]), messages)
            self.assertEqual(metric(self.b, "mf_edge_tracker_peer_id_taken_total"), taken_before + 1)
            self.assertIn("edge-a", holder_edge(self.redis, info_hash, peer_id))
            # b dropped its member: another peer's offer on b goes to the
            # holder on a, and nothing to the refused connection.
            other = await self.open(stack, self.b)
            await other.request(announce(info_hash, binary_id(), event="started", offers=offers(2)))
            offer = await holder.recv()
            self.assertIn("offer", offer)
            before, _ = await second.sync(info_hash)
            self.assertEqual(before, [])
            # Once the holder stops, the peer_id is free on b.
            await holder.request(announce(info_hash, peer_id, event="stopped"))
            await registered(self.redis, info_hash, peer_id, present=False)
            reply = await second.request(announce(info_hash, peer_id, event="started"))
            self.assertNotIn("failure reason", reply)
            wait_until(lambda: "edge-b" in (holder_edge(self.redis, info_hash, peer_id) or ""),
                       what="the peer_id registered by edge-b")
            before, _ = await second.sync(info_hash)
            self.assertEqual(before, [])
        self.run_async(body)


class TrackerExpiryAcrossEdges(TrackerClusterCase):
    """A peer silent for 1.5 intervals leaves the cluster's swarm: its record
    goes from Valkey while its connection stays open, and while the presence
    TTL is far off (so only the expiry can have removed it)."""

    def test_expired_peer_leaves_valkey(self):
        async def run(redis, edge):
            async with contextlib.AsyncExitStack() as stack:
                info_hash, id_silent = binary_id("expire-"), binary_id()
                silent = await self.open(stack, edge)
                await started(redis, silent, info_hash, id_silent)
                # interval 1 s: gone 1.5 s after its announce (expiry runs every second).
                await registered(redis, info_hash, id_silent, present=False)
                self.assertFalse(silent.ws.closed)

        with RedisServer() as redis:
            with AdminEdge(args=["--valkey", redis.address, "--valkey-ttl-ms", "600000",
                                 "--tracker-interval-s", "1", "--heartbeat-ms", "60000"],
                           edge_id="edge-tx", shards=2) as edge:
                wait_until(lambda: metric(edge, "mf_edge_valkey_up") == 1, what="edge connected to Valkey")
                asyncio.run(run(redis, edge))


if __name__ == "__main__":
    unittest.main()
