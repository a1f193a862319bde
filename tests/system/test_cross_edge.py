"""Cross-edge (docs/cluster.md): two or three real mf-edge processes sharing a real
redis-server (Redis 7 speaks what Valkey speaks), started and stopped by the
tests on random loopback ports, with independent SDK clients on each edge.

Covers: peers on different edges proposed to each other (same stream and
rendition only), signals across edges in order with byte-exact data, the
same-stream guard across edges, an edge killed with SIGKILL leaving the
proposals within the presence TTL, Redis restarted mid-run (presence
restored, no session lost), Redis down at start (local-only, then joining the
cluster), and the presence records as seen from an independent client."""

import asyncio
import json
import random
import signal
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, UNLIMITED_SOURCE, AccountingReaders, wait_until, AdminEdge, AsyncWs, SdkClient, edge_config_file, admin_get, parse_prometheus, peer_ids
from redis_process import RedisClient, RedisServer
from test_protocol_signal import RAW_DATA, signal_text

TTL_MS = 1500  # presence TTL of these tests: a dead edge's peers go within it
LIMITS = ["--messages-per-second", "5000", "--message-burst", "5000"]


def cluster_edge(redis_address, edge_id, shards=2, prefix="mf:", extra_args=()):
    return AdminEdge(args=["--valkey", redis_address, "--valkey-ttl-ms", str(TTL_MS), "--valkey-prefix", prefix]
                     + LIMITS + list(extra_args), edge_id=edge_id, shards=shards)


def metric(edge, name):
    return edge.metric(name)


def tag():
    return f"{random.randrange(1 << 30):x}"


def owner_registered(redis, peer):
    """The peer's owner key exists (`redis`: a RedisServer or a RedisCluster,
    whose MOVED RedisClient follows)."""
    with RedisClient(redis.port) as r:
        return r.command("GET", f"mf:{{p:{peer}}}:own") is not None


class ClusterTestCase(unittest.TestCase):
    def joined(self, edge, stream, rendition, peer, **fields):
        c = SdkClient(edge)
        self.addCleanup(c.close)
        joined, peers = c.join(stream, rendition, peer, **fields)
        self.assertEqual(joined["edge"], edge.edge_id)
        return c, peers

    def prepare_load_pairs(self, a, b, run, pairs):
        """The pairs of drive_signal_load joined once and proposed to each
        other (so each sender's edge knows where its receiver is), then
        closed: the load's own clients take their places."""
        clients = []
        for i in range(pairs):
            stream = f"load-{run}-{i}"
            receiver, _ = self.joined(b, stream, "r1", f"rx-{run}-{i}")
            sender, _ = self.joined(a, stream, "r1", f"tx-{run}-{i}")
            self.proposes(sender, f"rx-{run}-{i}")
            clients += [sender, receiver]
        for c in clients:
            c.close()

    def same_stream_guard_holds(self, a, b, redis):
        """A peer on edge `b` signals a peer of another stream on edge `a`
        (its owner record written, so `b` finds its edge): answered
        peer-not-found with `to` and `ref`, and nothing reaches the target.
        A peer that is nowhere gets the same answer."""
        pa, pb = f"a-{tag()}", f"b-{tag()}"
        ca, _ = self.joined(a, f"stream-a-{tag()}", "r1", pa)
        cb, _ = self.joined(b, f"stream-b-{tag()}", "r1", pb)
        wait_until(lambda: owner_registered(redis, pa), EXPECT_TIMEOUT_S, what="owner record of a")
        cb.send(signal_text(pa, "offer", '{"sdp":"x"}', ',"id":7'))
        error = cb.expect("error")
        self.assertEqual(error["code"], "peer-not-found")
        self.assertEqual(error["to"], pa)
        self.assertEqual(error["ref"], 7)
        self.assertEqual(ca.quiet(0.3), [])
        cb.send(signal_text(f"nobody-{tag()}", "offer", "{}", ',"id":"n"'))
        error = cb.expect("error")
        self.assertEqual((error["code"], error["ref"]), ("peer-not-found", "n"))

    def dead_edge_peers_expire(self, live, doomed):
        """`doomed` (an edge not started yet, on the same Valkey as `live`)
        started, a peer joined on it and proposed on `live`, then the edge
        killed with SIGKILL: the peer stops being proposed, and a signal to
        it is answered peer-not-found. Prints how long the peer stayed."""
        doomed.expect_clean_exit = False
        with doomed:
            stream = f"s-{tag()}"
            victim = f"victim-{tag()}"
            self.joined(doomed, stream, "r1", victim)
            asker, _ = self.joined(live, stream, "r1", f"asker-{tag()}")
            self.proposes(asker, victim)
            doomed.process.kill()
            killed = time.monotonic()
            # Without expiry the peer would stay proposed for ever; the bound
            # allows for the seconds a loaded machine can stall Valkey, the
            # edge or this test, and the figure is printed.
            wait_until(lambda: victim not in peer_ids(asker.need_peers(count=64)), TTL_MS / 1000 + EXPECT_TIMEOUT_S,
                       what="dead edge's peer unproposed")
            gone_after = time.monotonic() - killed
            print(f"\n    dead edge's peer unproposed {gone_after:.2f} s after SIGKILL (TTL {TTL_MS} ms)", flush=True)
            # Signals to it fail (no subscriber on its channel any more).
            asker.send(signal_text(victim, "offer", "{}", ',"id":1'))
            self.assertEqual(asker.expect("error")["code"], "peer-not-found")

    def proposes(self, client, peer, timeout=EXPECT_TIMEOUT_S):
        """need-peers until `peer` is among the candidates (presence is
        eventually consistent: the other edge's write may still be on its way)."""
        found = {}

        def check():
            peers = client.need_peers(count=64)
            for p in peers["peers"]:
                if p["peerId"] == peer:
                    found.update(p)
                    return True
            return False

        wait_until(check, timeout, what=f"{peer} proposed")
        return found

    def relays_in_order(self, sender, sender_id, receiver, receiver_id, count):
        """`count` candidate signals from sender to receiver (on any edges):
        each arrives once, in the order sent, from sender_id, its `data`
        byte for byte as sent."""
        datas = [RAW_DATA[i % len(RAW_DATA)] if i % 2 else '{"seq":%d}' % i for i in range(count)]
        for raw in datas:
            sender.send(signal_text(receiver_id, "candidate", raw))
        for i, raw in enumerate(datas):
            text = receiver.recv_raw(timeout=EXPECT_TIMEOUT_S)
            message = json.loads(text)
            self.assertEqual(message["type"], "signal", text)
            self.assertEqual(message["from"], sender_id)
            self.assertEqual(message["kind"], "candidate")
            self.assertTrue(text.endswith('"data":' + raw + "}"), f"signal {i}: {text!r} does not carry {raw!r}")


class TwoEdgeCluster(ClusterTestCase):
    """A redis-server and two edges (edge-a, edge-b) shared by a test class;
    a subclass adds edge arguments (EDGE_ARGS) or waits longer for Valkey."""

    EDGE_ARGS = ()
    VALKEY_WAIT_S = EXPECT_TIMEOUT_S

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer().start()
        cls.a = cluster_edge(cls.redis.address, "edge-a", extra_args=cls.EDGE_ARGS).start()
        cls.b = cluster_edge(cls.redis.address, "edge-b", extra_args=cls.EDGE_ARGS).start()
        wait_until(lambda: metric(cls.a, "mf_edge_valkey_up") == 1 and metric(cls.b, "mf_edge_valkey_up") == 1,
                 cls.VALKEY_WAIT_S, what="both edges connected to Valkey")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.__exit__(None, None, None)
            cls.b.__exit__(None, None, None)
        finally:
            cls.redis.close()


class CrossEdgeTest(TwoEdgeCluster):
    def test_each_edge_shows_the_other_in_api_cluster(self):
        # The operator pages' cluster view (docs/edge.md, "GET /api/cluster"):
        # edge-b's summary reaches edge-a through Valkey within a second.
        stream = f"view-{tag()}"
        self.joined(self.b, stream, "r1", f"v-{tag()}")

        def b_as_seen_from_a():
            document = json.loads(admin_get(self.a.admin_port, "/api/cluster").body)
            edges = {e["edge"]: e for e in document["edges"]}
            b = edges.get("edge-b")
            if b is None or not any(s["streamId"] == stream and s["peers"] == 1 for s in b["streams"]):
                return None
            return document if b["peers"] == metric(self.b, "mf_edge_peers_joined") else None

        document = wait_until(b_as_seen_from_a, EXPECT_TIMEOUT_S, what="edge-b's summary on edge-a")
        self.assertEqual((document["edge"], document["valkey"], document["edgeCount"]), ("edge-a", "up", 2))
        self.assertEqual([e["edge"] for e in document["edges"]], ["edge-a", "edge-b"])
        self.assertEqual(document["edges"][1]["valkey"], "up")

    def test_peers_on_different_edges_are_proposed_to_each_other(self):
        stream = f"s-{tag()}"
        pa, pb = f"a-{tag()}", f"b-{tag()}"
        ca, _ = self.joined(self.a, stream, "r1", pa, topology={"region": "eu-west", "country": "DE", "asn": 3320})
        # Same stream, other rendition, and another stream: never proposed.
        self.joined(self.a, stream, "r2", f"other-rendition-{tag()}")
        self.joined(self.a, f"other-{stream}", "r1", f"other-stream-{tag()}")
        cb, _ = self.joined(self.b, stream, "r1", pb, topology={"region": "eu-west"})
        found = self.proposes(cb, pa)
        self.assertEqual(found["rendition"], "r1")
        self.assertEqual(found["topology"], {"region": "eu-west", "country": "DE", "asn": 3320})
        self.proposes(ca, pb)
        for _ in range(3):
            self.assertEqual(peer_ids(cb.need_peers(count=64)), [pa])
            self.assertEqual(peer_ids(ca.need_peers(count=64)), [pb])
        # exclude holds across edges too.
        self.assertEqual(peer_ids(cb.need_peers(count=64, exclude=[pa])), [])
        # A new joiner gets remote candidates in its first `peers`.
        pc = f"c-{tag()}"
        _, first = self.joined(self.b, stream, "r1", pc)
        self.assertEqual(sorted(peer_ids(first)), sorted([pa, pb]))
        self.assertGreaterEqual(metric(self.b, "mf_edge_cluster_proposals_total"), 1)

    def test_local_candidates_come_first(self):
        stream = f"s-{tag()}"
        remote = f"remote-{tag()}"
        self.joined(self.a, stream, "r1", remote)
        local = f"local-{tag()}"
        self.joined(self.b, stream, "r1", local)
        cb, _ = self.joined(self.b, stream, "r1", f"asker-{tag()}")
        self.proposes(cb, remote)
        self.assertEqual(peer_ids(cb.need_peers(count=64)), [local, remote])
        # Enough local candidates: no Valkey round trip, local ones only.
        self.assertEqual(peer_ids(cb.need_peers(count=1)), [local])

    def test_non_accepting_and_left_peers_are_not_proposed(self):
        stream = f"s-{tag()}"
        shy, gone = f"shy-{tag()}", f"gone-{tag()}"
        self.joined(self.a, stream, "r1", shy, caps={"acceptingPeers": False})
        cg, _ = self.joined(self.a, stream, "r1", gone)
        cb, _ = self.joined(self.b, stream, "r1", f"asker-{tag()}")
        self.proposes(cb, gone)
        cg.send({"type": "leave"})
        self.assertEqual(cg.expect("left")["type"], "left")
        wait_until(lambda: peer_ids(cb.need_peers(count=64)) == [], EXPECT_TIMEOUT_S, what="left peer unproposed")
        # An update that stops accepting takes the peer out as well.
        pback = f"back-{tag()}"
        back, _ = self.joined(self.a, stream, "r1", pback)
        self.proposes(cb, pback)
        back.send({"type": "update", "caps": {"acceptingPeers": False}})
        wait_until(lambda: peer_ids(cb.need_peers(count=64)) == [], EXPECT_TIMEOUT_S, what="non-accepting peer unproposed")

    def test_signals_across_edges_in_order_and_byte_exact(self):
        stream = f"s-{tag()}"
        pa, pb = f"a-{tag()}", f"b-{tag()}"
        ca, _ = self.joined(self.a, stream, "r1", pa)
        cb, _ = self.joined(self.b, stream, "r2", pb)  # any rendition of the same stream
        wait_until(lambda: self._owner_registered(pb), EXPECT_TIMEOUT_S, what="owner record of b")
        count = 200
        self.relays_in_order(ca, pa, cb, pb, count)
        # And back, with an id that never comes back on success.
        cb.send(signal_text(pa, "answer", RAW_DATA[0], ',"id":"x1"'))
        text = ca.recv_raw(timeout=EXPECT_TIMEOUT_S)
        self.assertTrue(text.endswith('"data":' + RAW_DATA[0] + "}"), text)
        self.assertEqual(json.loads(text)["from"], pb)
        self.assertEqual(ca.quiet(0.2), [])
        self.assertEqual(cb.quiet(0.2), [])
        self.assertGreaterEqual(metric(self.a, "mf_edge_cluster_signals_sent_total"), count)
        self.assertGreaterEqual(metric(self.b, "mf_edge_cluster_signals_received_total"), count)

    def _owner_registered(self, peer):
        return owner_registered(self.redis, peer)

    def test_same_stream_guard_across_edges(self):
        self.same_stream_guard_holds(self.a, self.b, self.redis)

    def test_target_that_left_gets_peer_not_found_from_its_edge(self):
        # The owner record still names edge-b (written before the leave is
        # processed there): the target's edge answers for it.
        stream = f"s-{tag()}"
        pa, pb = f"a-{tag()}", f"b-{tag()}"
        ca, _ = self.joined(self.a, stream, "r1", pa)
        cb, _ = self.joined(self.b, stream, "r1", pb)
        wait_until(lambda: self._owner_registered(pb), EXPECT_TIMEOUT_S, what="owner record of b")
        with RedisClient(self.redis.port) as r:
            record = r.command("GET", f"mf:{{p:{pb}}}:own")
        cb.close()
        wait_until(lambda: not self._owner_registered(pb), EXPECT_TIMEOUT_S, what="owner record of b removed on close")
        # Put the stale record back, as if the removal had not arrived yet.
        with RedisClient(self.redis.port) as r:
            r.command("SET", f"mf:{{p:{pb}}}:own", record, "PX", "5000")
        ca.send(signal_text(pb, "offer", "{}", ',"id":"late"'))
        error = ca.expect("error")
        self.assertEqual((error["code"], error["to"], error["ref"]), ("peer-not-found", pb, "late"))

    def test_presence_records_in_valkey(self):
        stream = f"s-{tag()}"
        pa = f"a-{tag()}"
        ca, _ = self.joined(self.a, stream, "720p", pa, topology={"region": "us"})
        wait_until(lambda: self._owner_registered(pa), EXPECT_TIMEOUT_S, what="owner record")
        with RedisClient(self.redis.port) as r:
            ttl = r.command("PTTL", f"mf:{{p:{pa}}}:own")
            self.assertTrue(0 < ttl <= TTL_MS, ttl)
            self.assertIn("edge-a", r.command("GET", f"mf:{{p:{pa}}}:own"))
            members = r.command("ZRANGE", f"mf:{{s:{stream}}}:idx:720p", "0", "-1")
            self.assertEqual(members, [pa])
            record = r.command("HGET", f"mf:{{s:{stream}}}:rec:720p", pa)
            self.assertIn('{"region":"us"}', record)
            self.assertIsNotNone(r.command("GET", "mf:{e:edge-a}:alive"))
            self.assertIn("edge-b", r.command("ZRANGE", "mf:edges", "0", "-1"))
        # Refreshed well before expiry (the owner key on its connection's
        # tick, the swarm on its stream's): both still there after twice the TTL.
        time.sleep(2 * TTL_MS / 1000)
        self.assertTrue(self._owner_registered(pa))
        with RedisClient(self.redis.port) as r:
            self.assertEqual(r.command("ZRANGE", f"mf:{{s:{stream}}}:idx:720p", "0", "-1"), [pa])
            self.assertIn('{"region":"us"}', r.command("HGET", f"mf:{{s:{stream}}}:rec:720p", pa))
        # Deleted at once on leave.
        ca.send({"type": "leave"})
        ca.expect("left")
        wait_until(lambda: not self._owner_registered(pa), EXPECT_TIMEOUT_S, what="owner removed on leave")
        with RedisClient(self.redis.port) as r:
            self.assertEqual(r.command("ZRANGE", f"mf:{{s:{stream}}}:idx:720p", "0", "-1"), [])
        # A switch moves the records to the new swarm.
        ca.join(stream, "1080p", pa)
        wait_until(lambda: self._owner_registered(pa), EXPECT_TIMEOUT_S, what="owner record after rejoin")
        ca.join(stream, "480p", pa)
        def moved():
            with RedisClient(self.redis.port) as r:
                return (r.command("ZRANGE", f"mf:{{s:{stream}}}:idx:1080p", "0", "-1") == [] and
                        r.command("ZRANGE", f"mf:{{s:{stream}}}:idx:480p", "0", "-1") == [pa])
        wait_until(moved, EXPECT_TIMEOUT_S, what="switch moved the presence")


class EdgeDeathTest(ClusterTestCase):
    def test_sigkill_removes_the_edges_peers_within_the_ttl(self):
        with RedisServer() as redis:
            with cluster_edge(redis.address, "edge-live") as live:
                self.dead_edge_peers_expire(live, cluster_edge(redis.address, "edge-doomed", shards=1))


class ValkeyFaultTest(ClusterTestCase):
    def test_redis_restart_restores_presence_and_keeps_sessions(self):
        with RedisServer() as redis:
            with cluster_edge(redis.address, "edge-r1") as a, cluster_edge(redis.address, "edge-r2") as b:
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S, what="edge-r1 up")
                stream = f"s-{tag()}"
                before = f"before-{tag()}"
                cbefore, _ = self.joined(a, stream, "r1", before)
                redis.kill()
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 0, EXPECT_TIMEOUT_S, what="edge-r1 sees Valkey down")
                # Local service goes on: the session is alive, local joins work.
                cbefore.send({"type": "ping", "t": 1})
                self.assertEqual(cbefore.expect("pong")["t"], 1)
                local, _ = self.joined(a, stream, "r1", f"local-{tag()}")
                self.assertIn(before, peer_ids(local.need_peers(count=64)))
                redis.start()  # same port, empty memory
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1 and metric(b, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S,
                         what="both edges reconnected")
                after = f"after-{tag()}"
                cafter, _ = self.joined(b, stream, "r1", after)
                self.proposes(cafter, before)
                # edge-r1's command link may be ready before its subscriber
                # link has resubscribed: a signal published meanwhile reaches
                # nobody and its sender gets peer-not-found (never a silent
                # loss). Sent again on that answer only, until it arrives.
                text = None
                deadline = time.monotonic() + EXPECT_TIMEOUT_S
                cafter.send(signal_text(before, "offer", RAW_DATA[0]))
                while text is None and time.monotonic() < deadline:
                    try:
                        text = cbefore.recv_raw(timeout=0.2)
                    except TimeoutError:
                        try:
                            answer = json.loads(cafter.recv_raw(timeout=0.01))
                        except TimeoutError:
                            continue
                        self.assertEqual((answer["type"], answer["code"]), ("error", "peer-not-found"), answer)
                        cafter.send(signal_text(before, "offer", RAW_DATA[0]))
                self.assertIsNotNone(text, "the signal never reached edge-r1 after the restart")
                self.assertTrue(text.endswith('"data":' + RAW_DATA[0] + "}"), text)
                self.assertGreaterEqual(metric(a, "mf_edge_valkey_reconnects_total"), 1)
            self.assertEqual(a.stderr_text().count("serving local-only"), 1, a.stderr_text())

    def test_slow_valkey_peers_fall_back_to_local_candidates(self):
        with RedisServer() as redis:
            with cluster_edge(redis.address, "edge-slow") as a:
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S, what="edge-slow up")
                stream = f"s-{tag()}"
                first = f"first-{tag()}"
                self.joined(a, stream, "r1", first)
                c2, _ = self.joined(a, stream, "r1", f"second-{tag()}")
                redis.process.send_signal(signal.SIGSTOP)  # accepts, never answers
                try:
                    timeouts_before = metric(a, "mf_edge_cluster_peers_timeouts_total") or 0
                    started = time.monotonic()
                    self.assertEqual(peer_ids(c2.need_peers(count=64)), [first])
                    waited = time.monotonic() - started
                    # Answered by the 500 ms bound (counted), not by an error
                    # and not after the client's own timeout; how much later
                    # than 500 ms depends on the machine's load, so it is not
                    # asserted.
                    self.assertGreaterEqual(waited, 0.4)
                    self.assertEqual(metric(a, "mf_edge_cluster_peers_timeouts_total"), timeouts_before + 1)
                    c3, first_peers = self.joined(a, stream, "r1", f"third-{tag()}")
                    self.assertEqual(len(peer_ids(first_peers)), 2)
                    self.assertGreaterEqual(metric(a, "mf_edge_cluster_peers_timeouts_total"), 2)
                finally:
                    redis.process.send_signal(signal.SIGCONT)
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S, what="edge-slow up again")

    def test_valkey_down_at_start_serves_local_only_then_joins(self):
        redis = RedisServer()
        from edge_process import free_port
        redis.port = free_port()
        try:
            with cluster_edge(redis.address, "edge-early") as a:
                self.assertEqual(metric(a, "mf_edge_valkey_up"), 0)
                stream = f"s-{tag()}"
                first = f"first-{tag()}"
                c1, _ = self.joined(a, stream, "r1", first)
                c2, _ = self.joined(a, stream, "r1", f"second-{tag()}")
                self.assertEqual(peer_ids(c2.need_peers(count=64)), [first])
                # A signal to a peer that is nowhere here: peer-not-found.
                c2.send(signal_text(f"elsewhere-{tag()}", "offer", "{}"))
                self.assertEqual(c2.expect("error")["code"], "peer-not-found")
                wait_until(lambda: "serving local-only" in a.stderr_text(), EXPECT_TIMEOUT_S, what="logged")
                redis.start()
                with cluster_edge(redis.address, "edge-late") as b:
                    wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S, what="edge-early joined the cluster")
                    c3, _ = self.joined(b, stream, "r1", f"third-{tag()}")
                    self.proposes(c3, first)
                self.assertEqual(a.stderr_text().count("serving local-only"), 1, a.stderr_text())
        finally:
            redis.close()


if __name__ == "__main__":
    unittest.main()


class ValkeyRestartUnderLoadTest(ClusterTestCase):
    """Valkey killed and restarted while signals flow between edges
    (docs/cluster.md, "Faults"). Every signal a sender sent is either
    delivered once, in order, or answered with an error (`peer-not-found`
    while the target's edge cannot be found); never both. Never neither,
    but for what Valkey's at-most-once pub/sub loses as it dies: only
    signals sent before the kill (check_delivered_or_answered)."""

    PAIRS = 5
    PER_SENDER = 400
    # Senders get an error per signal while the target's edge cannot be
    # reached; the error budget (spec: more than 20 errors in 10 s close with
    # 1008) would end them. 254 per second is above their 200 signals/s.
    GENEROUS_ERRORS = {"error_limit": 254, "error_window_ms": 1000}

    def test_every_cross_edge_signal_is_delivered_or_answered(self):
        with RedisServer() as redis:
            extra = ["--config", edge_config_file(dict(UNLIMITED_SOURCE, **self.GENEROUS_ERRORS))]
            with cluster_edge(redis.address, "edge-u1", extra_args=extra) as a, \
                    cluster_edge(redis.address, "edge-u2", extra_args=extra) as b:
                wait_until(lambda: metric(a, "mf_edge_valkey_up") == 1 and metric(b, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S,
                         what="both edges up")
                run = tag()
                self.prepare_load_pairs(a, b, run, self.PAIRS)
                load = asyncio.run(self.drive(a, b, redis, run))
        answered, lost = check_delivered_or_answered(self, load, self.PER_SENDER)
        total = self.PAIRS * self.PER_SENDER
        print(f"\nvalkey restart under load: {total} cross-edge signals, {total - answered - lost} delivered once in "
              f"order, {answered} answered with an error, {lost} lost as Valkey died (published before the kill)")

    async def drive(self, a, b, redis, run):
        async def chaos(load):
            await asyncio.sleep(0.6)
            load.before_kill()
            redis.kill()
            await asyncio.sleep(0.6)
            redis.start()

        return await drive_signal_load(a, b, run, self.PAIRS, self.PER_SENDER, chaos)


class SignalLoad:
    """What drive_signal_load saw, per pair: the seqs delivered in arrival
    order, the ids answered with an error, how many signals the sender had
    sent so far, and (once chaos calls before_kill()) how many it had sent
    just before a Valkey process was killed."""

    def __init__(self, pairs):
        self.delivered = [[] for _ in range(pairs)]
        self.refused = [set() for _ in range(pairs)]
        self.sent = [0] * pairs
        self.sent_before_kill = None

    def before_kill(self):
        self.sent_before_kill = list(self.sent)


def check_delivered_or_answered(test, load, per_sender):
    """Every signal of every pair delivered once, in order, or answered with
    an error; never both. Never neither, with one exception that Valkey's
    pub/sub makes (docs/cluster.md, "Faults"): a Valkey process killed
    (SIGKILL) after it answered a PUBLISH but before it wrote the message to
    the subscriber's socket loses it, unanswered. Such a signal was sent
    before the kill: only those may be missing, and only when the load's
    chaos killed a Valkey process. Every pair's problems are named together.
    Returns (how many were answered with an error, how many were lost)."""
    problems = []
    lost = 0
    for i, (got, errors) in enumerate(zip(load.delivered, load.refused)):
        if got != sorted(set(got)):
            problems.append(f"pair {i}: delivered twice or out of order: {got}")
        both = set(got) & errors
        neither = set(range(per_sender)) - set(got) - errors
        if both:
            problems.append(f"pair {i}: delivered and answered with an error: {sorted(both)}")
        killed_window = set() if load.sent_before_kill is None else set(range(load.sent_before_kill[i]))
        if neither - killed_window:
            problems.append(f"pair {i}: neither delivered nor answered: {sorted(neither - killed_window)} "
                            f"({len(got)} delivered, {len(errors)} answered with an error, "
                            f"{'no kill' if load.sent_before_kill is None else f'{load.sent_before_kill[i]} sent before the kill'})")
        lost += len(neither & killed_window)
    test.assertEqual(problems, [])
    return sum(len(e) for e in load.refused), lost


async def drive_signal_load(a, b, run, pairs, per_sender, chaos):
    """PAIRS receivers on edge b, their senders on edge a (joined as
    rx-<run>-<i>, tx-<run>-<i> in stream load-<run>-<i>), each sender sending
    per_sender signals ({"seq": n}, id n) at 200/s while chaos(load) (a
    coroutine function, given the SignalLoad as it fills) runs. Returns the
    SignalLoad once every signal is accounted for (or, on a hang,
    EXPECT_TIMEOUT_S after the last send)."""
    receivers = [await AsyncWs.connect(b.host, b.port) for _ in range(pairs)]
    senders = [await AsyncWs.connect(a.host, a.port) for _ in range(pairs)]
    for i in range(pairs):
        stream = f"load-{run}-{i}"
        receivers[i].send_json({"type": "join", "streamId": stream, "rendition": "r1", "peerId": f"rx-{run}-{i}"})
        senders[i].send_json({"type": "join", "streamId": stream, "rendition": "r1", "peerId": f"tx-{run}-{i}"})
    for ws in receivers + senders:
        for _ in range(2):  # joined, peers
            message = json.loads(await asyncio.wait_for(ws.recv_text(), EXPECT_TIMEOUT_S))
            assert message["type"] in ("joined", "peers"), message
    load = SignalLoad(pairs)
    delivered, refused = load.delivered, load.refused
    accounted = set()  # (pair, seq) delivered or answered, each once

    def on_message(index, m):
        if index < pairs:
            if m["type"] == "signal":
                delivered[index].append(m["data"]["seq"])
                accounted.add((index, m["data"]["seq"]))
        elif m["type"] == "error":
            refused[index - pairs].add(m.get("ref"))
            accounted.add((index - pairs, m.get("ref")))

    # Until every signal is delivered or answered with an error, each counted
    # once: a duplicate must not stand in for one still missing.
    readers = AccountingReaders(receivers + senders, on_message, lambda: len(accounted) >= pairs * per_sender)

    async def send(i, ws):
        for seq in range(per_sender):
            ws.send_text('{"type":"signal","to":"rx-%s-%d","kind":"offer","id":%d,"data":{"seq":%d}}'
                         % (run, i, seq, seq))
            load.sent[i] = seq + 1
            await ws.writer.drain()
            await asyncio.sleep(0.005)

    await asyncio.gather(chaos(load), *(send(i, ws) for i, ws in enumerate(senders)))
    await readers.finish()
    for ws in receivers + senders:
        ws.close()
    return load
