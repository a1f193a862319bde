"""The WebTorrent tracker protocol on mf-edge's second WebSocket path
(docs/tracker.md), spoken by python3-websockets clients: announce, offers
relayed to other peers of the same swarm, answers routed back, and each
protection (an answer without a matching offer, a peer_id reused on another
connection, 11 offers, a full scrape, 64 KiB + 1), with one and two shards,
through mf-ingress, and peer expiry on the test clock."""

import asyncio
import contextlib
import json
import os
import random
import unittest

import websockets

from build_options import needs_test_hooks
from edge_process import EXPECT_TIMEOUT_S, AdminEdge, ManualClock, admin_get, class_fixture, parse_prometheus
from ingress_process import ingress_with_edges, trust_context

TIMEOUT_S = EXPECT_TIMEOUT_S
MAX_MESSAGE = 64 * 1024


def binary_id(prefix=""):
    """A 20-byte id as the JavaScript clients send it: a string of code
    points U+0000..U+00FF, here with bytes above 0x7F and control bytes."""
    rest = "".join(chr(random.randrange(256)) for _ in range(20 - len(prefix)))
    return prefix + rest


def announce(info_hash, peer_id, **fields):
    message = {"action": "announce", "info_hash": info_hash, "peer_id": peer_id}
    message.update(fields)
    return message


def offers(count, tag="o"):
    return [{"offer": {"type": "offer", "sdp": f"v=0\r\n{tag}-{i}"}, "offer_id": binary_id()} for i in range(count)]


async def open_peer(stack, url, ssl=None):
    """A tracker connection to `url`, closed when `stack` unwinds."""
    ws = await asyncio.wait_for(websockets.connect(url, ssl=ssl, max_size=None, open_timeout=TIMEOUT_S), TIMEOUT_S)
    stack.push_async_callback(ws.close)
    return Peer(ws)


def run_with_stack(body):
    """Runs `await body(stack)` with an AsyncExitStack that closes what it opened."""
    async def run():
        async with contextlib.AsyncExitStack() as stack:
            await body(stack)
    asyncio.run(run())


class Peer:
    """One tracker connection."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, message):
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout=TIMEOUT_S):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def request(self, message):
        await self.send(message)
        return await self.recv()

    async def sync(self, info_hash):
        """Every message that reaches this peer before the reply to a scrape
        it sends now (the edge's replies to one connection keep their order:
        what was sent to it earlier arrives first)."""
        await self.send({"action": "scrape", "info_hash": info_hash})
        before = []
        while True:
            message = await self.recv()
            if message.get("action") == "scrape" and "files" in message:
                return before, message
            before.append(message)


class TrackerCases:
    SHARDS = 1
    ARGS = ["--messages-per-second", "1000", "--message-burst", "1000"]

    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, AdminEdge(args=cls.ARGS, shards=cls.SHARDS,
                                                edge_id=f"edge-tracker-{cls.SHARDS}"))

    def url(self):
        return self.edge.ws_url("/announce")

    def ssl(self):
        return None

    async def open(self, stack):
        return await open_peer(stack, self.url(), self.ssl())

    def run_async(self, body):
        run_with_stack(body)

    def test_offer_and_answer_are_relayed_between_peers(self):
        async def body(stack):
            info_hash = binary_id("relay-")
            a, b = await self.open(stack), await self.open(stack)
            id_a, id_b = binary_id(), binary_id()
            reply = await a.request(announce(info_hash, id_a, event="started", numwant=5))
            self.assertEqual(reply, {"action": "announce", "info_hash": info_hash, "complete": 0, "incomplete": 1,
                                     "interval": 120})
            sent = offers(1)
            reply = await b.request(announce(info_hash, id_b, event="started", numwant=1, offers=sent,
                                             left=0))
            self.assertEqual((reply["complete"], reply["incomplete"]), (1, 1))
            offer = await a.recv()
            self.assertEqual(offer, {"action": "announce", "info_hash": info_hash, "peer_id": id_b,
                                     "offer": sent[0]["offer"], "offer_id": sent[0]["offer_id"]})
            answer = {"type": "answer", "sdp": "v=0\r\nanswer"}
            await a.send(announce(info_hash, id_a, to_peer_id=id_b, answer=answer, offer_id=sent[0]["offer_id"]))
            relayed = await b.recv()
            self.assertEqual(relayed, {"action": "announce", "info_hash": info_hash, "peer_id": id_a,
                                       "answer": answer, "offer_id": sent[0]["offer_id"]})
            # An offer is answered once.
            failure = await a.request(announce(info_hash, id_a, to_peer_id=id_b, answer=answer,
                                               offer_id=sent[0]["offer_id"]))
            self.assertIn("failure reason", failure)
            before, _ = await b.sync(info_hash)
            self.assertEqual(before, [])
        self.run_async(body)

    def test_answer_without_a_matching_offer_is_refused(self):
        async def body(stack):
            info_hash, other_hash = binary_id("nooffer-"), binary_id("other-")
            a, b, c = await self.open(stack), await self.open(stack), await self.open(stack)
            id_a, id_b, id_c = binary_id(), binary_id(), binary_id()
            await a.request(announce(info_hash, id_a))
            sent = offers(1)
            await b.request(announce(info_hash, id_b, offers=sent))
            await a.recv()  # the offer
            await c.request(announce(info_hash, id_c))
            answer = {"type": "answer", "sdp": "x"}
            cases = {
                "wrong offer_id": (a, announce(info_hash, id_a, to_peer_id=id_b, answer=answer,
                                              offer_id=binary_id())),
                "not the offer's recipient": (c, announce(info_hash, id_c, to_peer_id=id_b, answer=answer,
                                                          offer_id=sent[0]["offer_id"])),
                "another swarm": (a, announce(other_hash, id_a, to_peer_id=id_b, answer=answer,
                                              offer_id=sent[0]["offer_id"])),
                "someone else's peer_id": (c, announce(info_hash, id_a, to_peer_id=id_b, answer=answer,
                                                       offer_id=sent[0]["offer_id"])),
            }
            for name, (sender, message) in cases.items():
                with self.subTest(case=name):
                    failure = await sender.request(message)
                    self.assertIn("failure reason", failure)
            before, _ = await b.sync(info_hash)
            self.assertEqual(before, [], "no answer reached the offer's sender")
        self.run_async(body)

    def test_peer_id_is_bound_to_its_connection(self):
        async def body(stack):
            info_hash = binary_id("bound-")
            a, b = await self.open(stack), await self.open(stack)
            id_a = binary_id()
            await a.request(announce(info_hash, id_a, event="started"))
            failure = await b.request(announce(info_hash, id_a, event="started", offers=offers(1)))
            self.assertEqual(failure, {"failure reason": "peer_id in use by another connection",
                                       "action": "announce", "info_hash": info_hash})
            before, scrape = await a.sync(info_hash)
            self.assertEqual(before, [], "the impostor's offer reached nobody")
            self.assertEqual(scrape["files"][info_hash]["incomplete"], 1)
            # Once the holder stops, the peer_id is free.
            await a.request(announce(info_hash, id_a, event="stopped"))
            reply = await b.request(announce(info_hash, id_a, event="started"))
            self.assertEqual(reply["incomplete"], 1)
        self.run_async(body)

    def test_at_most_ten_offers_per_announce(self):
        async def body(stack):
            info_hash = binary_id("eleven-")
            others = [await self.open(stack) for _ in range(12)]
            for peer in others:
                await peer.request(announce(info_hash, binary_id()))
            sender = await self.open(stack)
            id_s = binary_id()
            reply = await sender.request(announce(info_hash, id_s, numwant=11, offers=offers(11)))
            self.assertEqual(reply["incomplete"], 13)
            received = []
            for peer in others:
                before, _ = await peer.sync(info_hash)
                received += before
            self.assertEqual(len(received), 10)
            self.assertTrue(all(m["peer_id"] == id_s for m in received))
            self.assertEqual(len({m["offer_id"] for m in received}), 10, "each offer to one peer")
        self.run_async(body)

    def test_offers_stay_in_their_swarm_and_skip_the_sender(self):
        async def body(stack):
            hash_1, hash_2 = binary_id("swarm1-"), binary_id("swarm2-")
            a, b = await self.open(stack), await self.open(stack)
            await b.request(announce(hash_2, binary_id()))
            reply = await a.request(announce(hash_1, binary_id(), offers=offers(5)))
            self.assertEqual(reply["incomplete"], 1)
            before_a, _ = await a.sync(hash_1)
            before_b, _ = await b.sync(hash_2)
            self.assertEqual((before_a, before_b), ([], []))
        self.run_async(body)

    def test_scrape_and_full_scrape(self):
        async def body(stack):
            hash_1, hash_2 = binary_id("scrape1-"), binary_id("scrape2-")
            a = await self.open(stack)
            await a.request(announce(hash_1, binary_id(), left=0))
            await a.request(announce(hash_2, binary_id(), event="completed"))
            reply = await a.request({"action": "scrape", "info_hash": [hash_1, hash_2]})
            self.assertEqual(reply, {"action": "scrape", "files": {
                hash_1: {"complete": 1, "incomplete": 0, "downloaded": 0},
                hash_2: {"complete": 1, "incomplete": 0, "downloaded": 1}}})
            failure = await a.request({"action": "scrape"})
            self.assertEqual(failure, {"failure reason": "full scrape is not allowed", "action": "scrape"})
        self.run_async(body)

    def test_replies_to_one_connection_keep_their_order(self):
        """Announces and scrapes sent back to back, without waiting: each
        swarm's announce reply comes before the reply to the scrape sent
        after it, whichever shard owns the swarm (with two shards some are
        decided on the other one, both in one of its loop turns: its ready
        messages for a connection go one way, in order, docs/tracker.md,
        "Where the work happens"), and the scrape counts the announced peer."""
        async def body(stack):
            a = await self.open(stack)
            hashes = [binary_id(f"order{i:02d}-") for i in range(16)]
            for info_hash in hashes:
                await a.send(announce(info_hash, binary_id()))
                await a.send({"action": "scrape", "info_hash": info_hash})
            seen = []
            for _ in range(2 * len(hashes)):
                message = await a.recv()
                if message.get("action") == "scrape":
                    (info_hash, counts), = message["files"].items()
                    self.assertEqual(counts["incomplete"], 1)
                    seen.append(("scrape", info_hash))
                else:
                    self.assertNotIn("failure reason", message)
                    seen.append(("announce", message["info_hash"]))
            for info_hash in hashes:
                self.assertLess(seen.index(("announce", info_hash)), seen.index(("scrape", info_hash)), seen)
        self.run_async(body)

    def test_stopped_removes_the_peer(self):
        async def body(stack):
            info_hash = binary_id("stop-")
            a, b = await self.open(stack), await self.open(stack)
            id_a = binary_id()
            await a.request(announce(info_hash, id_a))
            await b.request(announce(info_hash, binary_id()))
            reply = await a.request(announce(info_hash, id_a, event="stopped"))
            self.assertEqual(reply["incomplete"], 1)
            reply = await b.request(announce(info_hash, binary_id("x"), offers=offers(3)))
            before, _ = await a.sync(info_hash)
            self.assertEqual(before, [], "a stopped peer gets no offers")
        self.run_async(body)

    def test_closing_the_connection_leaves_its_swarms(self):
        async def body(stack):
            info_hash = binary_id("close-")
            a, b = await self.open(stack), await self.open(stack)
            await a.request(announce(info_hash, binary_id()))
            await a.ws.close()

            async def left():
                while True:
                    _, scrape = await b.sync(info_hash)
                    if scrape["files"][info_hash]["incomplete"] == 0:
                        return
                    await asyncio.sleep(0.02)
            await asyncio.wait_for(left(), TIMEOUT_S)
        self.run_async(body)

    def test_messages_above_64_kib_close_with_1009(self):
        async def body(stack):
            info_hash = binary_id("big-")
            a = await self.open(stack)
            peer_id = binary_id()
            base = json.dumps(announce(info_hash, peer_id, pad=""))
            exact = json.dumps(announce(info_hash, peer_id, pad="x" * (MAX_MESSAGE - len(base.encode()))))
            self.assertEqual(len(exact.encode()), MAX_MESSAGE)
            reply = await a.request(exact)
            self.assertEqual(reply["action"], "announce", "64 KiB exactly is accepted")
            b = await self.open(stack)
            await b.send(exact[:-2] + "x\"}")
            with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                await b.recv()
            self.assertEqual(closed.exception.code, 1009)
        self.run_async(body)

    def test_malformed_messages_get_a_failure_reason(self):
        async def body(stack):
            a = await self.open(stack)
            for text in ["{", "[]", '{"action":"connect"}', '{"action":"announce","info_hash":"short"}',
                         json.dumps(announce("\u0100" * 20, binary_id()))]:
                with self.subTest(text=text):
                    await a.send(text)
                    self.assertIn("failure reason", await a.recv())
        self.run_async(body)

    def test_swarm_figures_in_metrics(self):
        async def body(stack):
            info_hash = binary_id("metrics-")
            a, b = await self.open(stack), await self.open(stack)
            await a.request(announce(info_hash, binary_id()))
            await b.request(announce(info_hash, binary_id(), left=0, offers=offers(1)))
            await a.recv()
            metrics, _ = parse_prometheus(admin_get(self.edge.admin_port, "/metrics").body.decode())
            self.assertGreaterEqual(metrics[("mf_edge_tracker_swarms", frozenset())], 1)
            self.assertGreaterEqual(metrics[("mf_edge_tracker_peers", frozenset())], 2)
            self.assertGreaterEqual(metrics[("mf_edge_tracker_seeders", frozenset())], 1)
            self.assertGreaterEqual(metrics[("mf_edge_tracker_offers_relayed_total", frozenset())], 1)
            self.assertGreaterEqual(metrics[("mf_edge_tracker_announces_total", frozenset())], 2)
        self.run_async(body)


class TrackerOneShard(TrackerCases, unittest.TestCase):
    SHARDS = 1


class TrackerTwoShards(TrackerCases, unittest.TestCase):
    SHARDS = 2


class TrackerThroughIngress(unittest.TestCase):
    """wss on mf-ingress, plain with PROXY v2 to the edge: same path, same protocol."""

    @classmethod
    def setUpClass(cls):
        cls.ingress, cls.edges = class_fixture(cls, ingress_with_edges(
            count=1, edge_args=["--messages-per-second", "1000", "--message-burst", "1000"]))

    def test_offer_and_answer_through_the_ingress(self):
        async def run():
            async with contextlib.AsyncExitStack() as stack:
                peers = []
                for _ in range(2):
                    ws = await asyncio.wait_for(websockets.connect(self.ingress.ws_url("/announce"),
                                                                   ssl=trust_context(), open_timeout=TIMEOUT_S),
                                                TIMEOUT_S)
                    stack.push_async_callback(ws.close)
                    peers.append(Peer(ws))
                a, b = peers
                info_hash, id_a, id_b = binary_id("ingress-"), binary_id(), binary_id()
                await a.request(announce(info_hash, id_a))
                sent = offers(1)
                await b.request(announce(info_hash, id_b, offers=sent))
                offer = await a.recv()
                self.assertEqual((offer["peer_id"], offer["offer_id"]), (id_b, sent[0]["offer_id"]))
                answer = {"type": "answer", "sdp": "v=0"}
                await a.send(announce(info_hash, id_a, to_peer_id=id_b, answer=answer, offer_id=sent[0]["offer_id"]))
                self.assertEqual((await b.recv())["answer"], answer)
        asyncio.run(run())


@needs_test_hooks
class TrackerExpiry(unittest.TestCase):
    """Peers silent for 1.5 intervals leave; offers expire (test clock)."""

    def test_silent_peers_and_old_offers_expire(self):
        async def run(edge, clock):
            async with contextlib.AsyncExitStack() as stack:
                async def open_peer():
                    ws = await asyncio.wait_for(websockets.connect(edge.ws_url("/announce"),
                                                                   open_timeout=TIMEOUT_S), TIMEOUT_S)
                    stack.push_async_callback(ws.close)
                    return Peer(ws)
                a, b = await open_peer(), await open_peer()
                info_hash, id_a, id_b = binary_id("expiry-"), binary_id(), binary_id()
                reply = await a.request(announce(info_hash, id_a))
                self.assertEqual(reply["interval"], 4)
                sent = offers(1)
                await b.request(announce(info_hash, id_b, offers=sent))
                await a.recv()
                # The offer may be answered for 2 s: not after.
                clock.advance(2000)
                answer = announce(info_hash, id_a, to_peer_id=id_b, answer={"type": "answer", "sdp": "x"},
                                  offer_id=sent[0]["offer_id"])
                self.assertIn("failure reason", await a.request(answer))
                # b announces again; a stays silent past 1.5 intervals (6 s since its announce).
                clock.advance(3000)
                await b.request(announce(info_hash, id_b))
                clock.advance(1001)

                async def a_gone():
                    while True:
                        _, scrape = await b.sync(info_hash)
                        if scrape["files"][info_hash]["incomplete"] == 1:
                            return
                        await asyncio.sleep(0.02)
                await asyncio.wait_for(a_gone(), TIMEOUT_S)
                # a's connection is still open (the heartbeat is far off), yet b's offers no longer reach it.
                await b.request(announce(info_hash, id_b, offers=offers(1)))
                before, _ = await a.sync(info_hash)
                self.assertEqual(before, [])
        with ManualClock() as clock, AdminEdge(args=["--tracker-interval-s", "4", "--heartbeat-ms", "60000",
                                                     "--config", tracker_config(offer_ttl_s=2)]) as edge:
            asyncio.run(run(edge, clock))


def tracker_config(**settings):
    from edge_process import write_run_file
    lines = ["[tracker]"] + [f"{k} = {v}" for k, v in settings.items()]
    return write_run_file("edge-tracker.toml", "\n".join(lines) + "\n")


if __name__ == "__main__":
    unittest.main()
