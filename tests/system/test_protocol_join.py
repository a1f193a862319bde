"""join / leave / switch / need-peers / update and the `peers` rules
(docs/protocol.md sections 3, 4, 6 and 7) against the real mf-edge, with independent
raw-socket clients (edge_process.SdkClient)."""

import json
import time
import unittest

from edge_process import (SharedEdgeCase, EXPECT_TIMEOUT_S, UNLIMITED_SOURCE, AdminEdge, SdkClient, edge_config_file, peer_ids, write_run_file)

HEARTBEAT_MS = 20000
DEFAULT_POLICY = {"meshEnabled": True, "maxPeers": 8, "maxViewers": 0, "uploadCapKbps": 0, "cmafMode": "off",
                  "offerTimeoutMs": 10000}


class EdgeCase(SharedEdgeCase):
    EDGE_ID = "edge-join-1"
    HEARTBEAT = HEARTBEAT_MS

    @classmethod
    def edge_args(cls):
        return ["--heartbeat-ms", str(cls.HEARTBEAT)] + super().edge_args()

    def joined_client(self, stream, rendition, peer, **fields):
        c = self.client()
        joined, peers = c.join(stream, rendition, peer, **fields)
        return c, joined, peers

    def assert_never_proposed(self, requester, peer, tries=3, **fields):
        for _ in range(tries):
            ids = peer_ids(requester.need_peers(**fields))
            self.assertNotIn(peer, ids)

    def wait_not_proposed(self, requester, peer, timeout=EXPECT_TIMEOUT_S, **fields):
        """Polls need-peers until `peer` is absent (leave/close are asynchronous
        across shards); fails if it is still proposed after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            ids = peer_ids(requester.need_peers(**fields))
            if peer not in ids:
                return
            if time.monotonic() > deadline:
                self.fail(f"{peer} still proposed {timeout} s after it left: {ids}")
            time.sleep(0.05)

    def assert_peers_well_formed(self, message, requester=None):
        self.assertEqual(message.get("type"), "peers")
        self.assertIsInstance(message.get("peers"), list, message)
        ids = []
        for entry in message["peers"]:
            self.assertIsInstance(entry, dict)
            self.assertEqual(set(entry) - {"peerId", "rendition", "topology"}, set(), entry)
            self.assertIsInstance(entry.get("peerId"), str, entry)
            self.assertIsInstance(entry.get("rendition"), str, entry)
            self.assertIsInstance(entry.get("topology"), dict, entry)
            ids.append(entry["peerId"])
        self.assertEqual(len(ids), len(set(ids)), f"duplicates in {ids}")
        if requester is not None:
            self.assertNotIn(requester, ids, "the requester itself was proposed")
        return ids


class JoinBasics(EdgeCase):
    def test_joined_has_every_field_then_peers(self):
        c = self.client()
        c.send({"type": "join", "streamId": "basic-1", "rendition": "720p", "peerId": "p-basic-a", "id": "j-1"})
        raw = c.recv_raw()
        joined = json.loads(raw)
        self.assertEqual(joined.get("type"), "joined", raw)
        self.assertEqual(joined.get("peerId"), "p-basic-a")
        self.assertEqual(joined.get("streamId"), "basic-1")
        self.assertEqual(joined.get("rendition"), "720p")
        self.assertEqual(joined.get("edge"), self.edge.edge_id, "edge must be the --edge-id given")
        self.assertIsInstance(joined.get("session"), str)
        self.assertRegex(joined["session"], r"^[0-9a-fA-F]{32}$", "session: 128 bits as 32 hex characters")
        self.assertEqual(joined.get("heartbeatMs"), HEARTBEAT_MS)
        self.assertIs(type(joined.get("heartbeatMs")), int)
        self.assertEqual(joined.get("ref"), "j-1")
        self.assertIn('"ref":"j-1"', raw)
        policy = joined.get("policy")
        self.assertIsInstance(policy, dict, raw)
        for field, kind in (("meshEnabled", bool), ("maxPeers", int), ("maxViewers", int), ("uploadCapKbps", int),
                            ("cmafMode", str), ("offerTimeoutMs", int)):
            self.assertIn(field, policy, f"policy lacks {field}: {raw}")
            self.assertIs(type(policy[field]), kind, f"policy.{field}: {raw}")
        self.assertIn(policy["cmafMode"], ("off", "advertise-only", "on"))
        for field, value in DEFAULT_POLICY.items():
            self.assertEqual(policy[field], value, f"built-in default of {field}")
        peers = c.recv()
        self.assertEqual(peers.get("type"), "peers", "joined must be followed by peers")
        self.assertEqual(peers["peers"], [], "first peer of a swarm: nobody to propose")

    def test_numeric_id_echoed_as_ref(self):
        c = self.client()
        c.send('{"id":12345678901,"type":"join","streamId":"basic-2","rendition":"r","peerId":"p-num"}')
        raw = c.recv_raw()
        self.assertEqual(json.loads(raw).get("type"), "joined", raw)
        self.assertIn('"ref":12345678901', raw)
        c.expect("peers")
        # leave with an id: left echoes it.
        c.send({"type": "leave", "id": 9})
        left = c.recv()
        self.assertEqual(left, {"type": "left", "ref": 9})
        # need-peers with an id after a new join: peers echoes it.
        c.join("basic-2", "r", "p-num")
        reply = c.need_peers(id="np-1")
        self.assertEqual(reply.get("ref"), "np-1")

    def test_sessions_are_distinct(self):
        sessions = set()
        for i in range(5):
            _, joined, _ = self.joined_client("basic-3", "r", f"p-sess-{i}")
            sessions.add(joined["session"])
        self.assertEqual(len(sessions), 5, "every identity needs its own random session")

    def test_second_peer_gets_first_with_topology(self):
        self.joined_client("basic-4", "hd", "p-first", topology={"asn": 3320, "region": "eu-west"})
        _, _, peers = self.joined_client("basic-4", "hd", "p-second")
        self.assert_peers_well_formed(peers, "p-second")
        self.assertEqual(peers["peers"], [{"peerId": "p-first", "rendition": "hd",
                                           "topology": {"region": "eu-west", "asn": 3320}}])
        # A peer without topology comes back with {}.
        _, _, peers = self.joined_client("basic-4", "hd", "p-third", topology={"country": "DE"})
        entries = {e["peerId"]: e for e in peers["peers"]}
        self.assertEqual(set(entries), {"p-first", "p-second"})
        self.assertEqual(entries["p-second"]["topology"], {})
        self.assertEqual(entries["p-second"]["rendition"], "hd")

    def test_leave_then_join_again(self):
        a, _, _ = self.joined_client("leave-1", "r", "p-leaver")
        b, _, peers = self.joined_client("leave-1", "r", "p-stayer")
        self.assertEqual(peer_ids(peers), ["p-leaver"])
        a.send({"type": "leave", "id": "bye"})
        self.assertEqual(a.recv(), {"type": "left", "ref": "bye"})
        self.wait_not_proposed(b, "p-leaver")
        # The connection stays usable.
        self.assertEqual(a.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})
        # signal now is not-joined.
        reply = a.request({"type": "signal", "to": "p-stayer", "kind": "offer", "data": {}})
        self.assertEqual((reply.get("type"), reply.get("code")), ("error", "not-joined"), reply)
        # Join again (same id, other stream is fine too) and be proposed again.
        joined, peers = a.join("leave-1", "r", "p-leaver")
        self.assertEqual(peer_ids(peers), ["p-stayer"])
        self.assertIn("p-leaver", peer_ids(b.need_peers()))

    def test_leave_without_join_answers_left(self):
        c = self.client()
        self.assertEqual(c.request({"type": "leave"}), {"type": "left"})
        self.assertEqual(c.request({"type": "ping", "t": "x"}), {"type": "pong", "t": "x"})

    def test_close_removes_peer_from_proposals(self):
        a, _, _ = self.joined_client("close-1", "r", "p-closer")
        b, _, _ = self.joined_client("close-1", "r", "p-watcher")
        self.assertIn("p-closer", peer_ids(b.need_peers()))
        a.close()
        self.wait_not_proposed(b, "p-closer")
        # The peerId is free again: a fresh connection can join with it without a session.
        self.joined_client("close-1", "r", "p-closer")


class JoinSwitch(EdgeCase):
    SHARDS = 2
    EDGE_ID = "edge-switch-2"

    def test_switch_rendition(self):
        a, joined_a, _ = self.joined_client("sw-1", "low", "p-sw-a")
        b, _, _ = self.joined_client("sw-1", "low", "p-sw-b")
        c, _, _ = self.joined_client("sw-1", "high", "p-sw-c")
        self.assertIn("p-sw-a", peer_ids(b.need_peers()))
        joined, peers = a.join("sw-1", "high", "p-sw-a", id="switch")
        self.assertEqual((joined["streamId"], joined["rendition"], joined["peerId"]), ("sw-1", "high", "p-sw-a"))
        self.assertEqual(joined.get("ref"), "switch")
        self.assertEqual(peer_ids(peers), ["p-sw-c"], "after the switch: candidates of the new swarm only")
        self.wait_not_proposed(b, "p-sw-a")
        self.assertIn("p-sw-a", peer_ids(c.need_peers()))
        self.assertEqual(peer_ids(a.need_peers()), ["p-sw-c"])

    def test_switch_stream(self):
        a, _, _ = self.joined_client("sw-2", "r", "p-sw2-a")
        b, _, _ = self.joined_client("sw-2", "r", "p-sw2-b")
        d, _, _ = self.joined_client("sw-3", "r", "p-sw2-d")
        joined, peers = a.join("sw-3", "r", "p-sw2-a")
        self.assertEqual(joined["streamId"], "sw-3")
        self.assertEqual(peer_ids(peers), ["p-sw2-d"])
        self.wait_not_proposed(b, "p-sw2-a")
        self.assertIn("p-sw2-a", peer_ids(d.need_peers()))
        # Signals follow the new stream: b (sw-2) can no longer reach a; d (sw-3) can.
        b.send({"type": "signal", "to": "p-sw2-a", "kind": "offer", "data": 1, "id": 5})
        err = b.recv()
        self.assertEqual((err.get("type"), err.get("code"), err.get("to"), err.get("ref")),
                         ("error", "peer-not-found", "p-sw2-a", 5), err)
        d.send({"type": "signal", "to": "p-sw2-a", "kind": "offer", "data": 2})
        self.assertEqual(a.recv(), {"type": "signal", "from": "p-sw2-d", "kind": "offer", "data": 2})

    def test_switch_with_other_peer_id_is_bad_request(self):
        a, _, _ = self.joined_client("sw-4", "r", "p-sw4-a")
        b, _, _ = self.joined_client("sw-4", "r", "p-sw4-b")
        a.send({"type": "join", "streamId": "sw-5", "rendition": "r", "peerId": "p-sw4-other", "id": "x"})
        err = a.recv()
        self.assertEqual((err.get("type"), err.get("code"), err.get("ref")), ("error", "bad-request", "x"), err)
        self.assertIn("peerId", err.get("message", ""), "message must name the field")
        self.assertEqual(a.quiet(0.2), [], "no joined/peers after a refused switch")
        # Still joined to the old swarm under the old id.
        self.assertIn("p-sw4-a", peer_ids(b.need_peers()))
        self.assertEqual(peer_ids(a.need_peers()), ["p-sw4-b"])

    def test_switch_keeps_caps_and_topology(self):
        # docs/protocol.md: a switch keeps caps and topology unless the join declares them again.
        a, _, _ = self.joined_client("sw-6", "r", "p-sw6-a", topology={"region": "eu"},
                                     caps={"acceptingPeers": False})
        a.join("sw-6", "r2", "p-sw6-a")
        b, _, peers = self.joined_client("sw-6", "r2", "p-sw6-b")
        self.assertEqual(peers["peers"], [], "acceptingPeers:false must survive the switch")
        a.send({"type": "update", "caps": {"acceptingPeers": True}})
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while True:
            reply = b.need_peers()
            if reply["peers"]:
                break
            self.assertLess(time.monotonic(), deadline, "update acceptingPeers:true not applied")
            time.sleep(0.05)
        self.assertEqual(reply["peers"], [{"peerId": "p-sw6-a", "rendition": "r2", "topology": {"region": "eu"}}])


class PeersRules(EdgeCase):
    SHARDS = 2
    EDGE_ID = "edge-peers"

    def test_only_same_stream_and_rendition_never_self(self):
        a, _, _ = self.joined_client("pr-1", "r1", "p-pr-a")
        self.joined_client("pr-1", "r1", "p-pr-b")
        self.joined_client("pr-1", "r1", "p-pr-c")
        self.joined_client("pr-1", "r2", "p-pr-d")
        self.joined_client("pr-2", "r1", "p-pr-e")
        _, _, peers = self.joined_client("pr-1", "r1", "p-pr-f")
        self.assertEqual(sorted(self.assert_peers_well_formed(peers, "p-pr-f")), ["p-pr-a", "p-pr-b", "p-pr-c"])
        for entry in peers["peers"]:
            self.assertEqual(entry["rendition"], "r1")
        for _ in range(3):
            ids = self.assert_peers_well_formed(a.need_peers(), "p-pr-a")
            self.assertEqual(sorted(ids), ["p-pr-b", "p-pr-c", "p-pr-f"])

    def test_not_accepting_peers_never_proposed(self):
        a, _, _ = self.joined_client("pr-acc", "r", "p-acc-a")
        n, _, _ = self.joined_client("pr-acc", "r", "p-acc-n", caps={"acceptingPeers": False})
        _, _, peers = self.joined_client("pr-acc", "r", "p-acc-b")
        self.assertEqual(peer_ids(peers), ["p-acc-a"])
        self.assert_never_proposed(a, "p-acc-n")
        # A non-accepting peer still gets candidates itself.
        self.assertEqual(sorted(peer_ids(n.need_peers())), ["p-acc-a", "p-acc-b"])
        # update flips it on: proposed.
        n.send({"type": "update", "caps": {"acceptingPeers": True}})
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while "p-acc-n" not in peer_ids(a.need_peers()):
            self.assertLess(time.monotonic(), deadline, "update acceptingPeers:true not applied")
            time.sleep(0.05)
        # ... and off again: never proposed afterwards.
        n.send({"type": "update", "caps": {"acceptingPeers": False}})
        self.wait_not_proposed(a, "p-acc-n")
        self.assert_never_proposed(a, "p-acc-n")
        _, _, peers = self.joined_client("pr-acc", "r", "p-acc-c")
        self.assertNotIn("p-acc-n", peer_ids(peers))

    def test_count_and_max_peers(self):
        members = [self.joined_client("pr-max", "r", f"p-max-{i:02d}")[0] for i in range(12)]
        # Default policy maxPeers 8.
        _, _, peers = self.joined_client("pr-max", "r", "p-max-req")
        self.assertEqual(len(self.assert_peers_well_formed(peers, "p-max-req")), 8)
        req = members[0]
        self.assertEqual(len(self.assert_peers_well_formed(req.need_peers(), "p-max-00")), 8)
        self.assertEqual(len(self.assert_peers_well_formed(req.need_peers(count=3), "p-max-00")), 3)
        self.assertEqual(len(self.assert_peers_well_formed(req.need_peers(count=64), "p-max-00")), 8)
        # caps.maxPeers lowers it, at join and via update.
        low, _, peers = self.joined_client("pr-max", "r", "p-max-low", caps={"maxPeers": 5})
        self.assertEqual(len(peers["peers"]), 5)
        self.assertEqual(len(low.need_peers(count=20)["peers"]), 5)
        self.assertEqual(len(low.need_peers(count=2)["peers"]), 2)
        low.send({"type": "update", "caps": {"maxPeers": 3}})
        self.assertEqual(len(low.need_peers(count=20)["peers"]), 3)
        zero, _, peers = self.joined_client("pr-max", "r", "p-max-zero", caps={"maxPeers": 0})
        self.assertEqual(peers["peers"], [], "caps.maxPeers 0: no candidates")
        self.assertEqual(zero.need_peers(count=5)["peers"], [])

    def test_need_peers_exclude(self):
        for i in range(5):
            self.joined_client("pr-ex", "r", f"p-ex-{i}")
        req, _, _ = self.joined_client("pr-ex", "r", "p-ex-req")
        for _ in range(5):
            ids = self.assert_peers_well_formed(req.need_peers(count=8, exclude=["p-ex-0", "p-ex-3", "nobody"]),
                                                "p-ex-req")
            self.assertEqual(sorted(ids), ["p-ex-1", "p-ex-2", "p-ex-4"])
        ids = peer_ids(req.need_peers(count=2, exclude=["p-ex-1"]))
        self.assertEqual(len(ids), 2)
        self.assertNotIn("p-ex-1", ids)

    def test_order_region_then_asn_then_country(self):
        me = {"region": "eu", "country": "DE", "asn": 100}
        candidates = [  # best first
            ("p-ord-ra", {"region": "eu", "country": "FR", "asn": 100}),
            ("p-ord-r", {"region": "eu", "country": "FR", "asn": 200}),
            ("p-ord-ac", {"region": "us", "country": "DE", "asn": 100}),
            ("p-ord-a", {"region": "us", "country": "US", "asn": 100}),
            ("p-ord-c", {"region": "us", "country": "DE", "asn": 300}),
            ("p-ord-o", {"region": "ap", "country": "JP", "asn": 400}),
        ]
        # Join them worst first so that join order cannot produce the expected order by accident.
        for peer, topology in reversed(candidates):
            self.joined_client("pr-ord", "r", peer, topology=topology)
        req, _, peers = self.joined_client("pr-ord", "r", "p-ord-req", topology=me)
        expected = [p for p, _ in candidates]
        self.assertEqual(peer_ids(peers), expected, "initial peers: region, then asn, then country")
        for _ in range(3):
            self.assertEqual(peer_ids(req.need_peers()), expected)
        self.assertEqual(peer_ids(req.need_peers(count=3)), expected[:3])
        # update of the requester's topology reorders.
        req.send({"type": "update", "topology": {"region": "ap", "asn": 400}})
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while True:
            ids = peer_ids(req.need_peers())
            if ids[0] == "p-ord-o":
                break
            self.assertLess(time.monotonic(), deadline, f"topology update not applied: {ids}")
            time.sleep(0.05)
        self.assertEqual(ids[0], "p-ord-o")

    def test_order_fewest_proposals(self):
        # Q joins first; X0..X3 join after it. Each join's initial peers
        # proposes everyone already there, so proposals are X0:3, X1:2, X2:1,
        # X3:0 (Q: 4). Without topology, Q's need-peers must then list
        # X3, X2, X1, X0. Counters halve every 30 s; if a halving falls in
        # the middle, ties appear, so one retry with a fresh swarm is allowed.
        for attempt in range(2):
            stream = f"pr-fair-{attempt}"
            q, _, _ = self.joined_client(stream, "r", f"p-fair-q{attempt}")
            for i in range(4):
                self.joined_client(stream, "r", f"p-fair-{attempt}-{i}")
            ids = peer_ids(q.need_peers(count=4))
            expected = [f"p-fair-{attempt}-{i}" for i in (3, 2, 1, 0)]
            if ids == expected:
                break
        self.assertEqual(ids, expected, "equal topology: fewest current proposals first")

    def test_same_country_beats_proposals(self):
        self.joined_client("pr-cty", "r", "p-cty-de", topology={"country": "DE"})
        for i in range(3):
            self.joined_client("pr-cty", "r", f"p-cty-x{i}")
        # p-cty-de has been proposed 3 times, the x's fewer: country wins anyway.
        _, _, peers = self.joined_client("pr-cty", "r", "p-cty-req", topology={"country": "DE"})
        self.assertEqual(peer_ids(peers)[0], "p-cty-de")


class PolicyMaxPeers(EdgeCase):
    EDGE_ID = "edge-policy-max"

    @classmethod
    def setUpClass(cls):
        path = write_run_file("policy.json", json.dumps({"defaults": {"maxPeers": 4},
                                                         "streams": {"pm-2": {"maxPeers": 2}}}))
        cls.ARGS = ("--policy", path)
        super().setUpClass()

    def test_policy_max_peers_caps_the_list(self):
        for i in range(6):
            self.joined_client("pm-1", "r", f"p-pm1-{i}")
            self.joined_client("pm-2", "r", f"p-pm2-{i}")
        c, joined, peers = self.joined_client("pm-1", "r", "p-pm1-req")
        self.assertEqual(joined["policy"]["maxPeers"], 4)
        self.assertEqual(len(peers["peers"]), 4)
        self.assertEqual(len(c.need_peers(count=10)["peers"]), 4)
        self.assertEqual(len(c.need_peers(count=3)["peers"]), 3)
        c2, joined, peers = self.joined_client("pm-2", "r", "p-pm2-req", caps={"maxPeers": 6})
        self.assertEqual(joined["policy"]["maxPeers"], 2)
        self.assertEqual(len(peers["peers"]), 2, "policy maxPeers below caps.maxPeers wins")
        self.assertEqual(len(c2.need_peers(count=64)["peers"]), 2)


class JoinedPeerGoesSilent(EdgeCase):
    """Spec 7: a peer that is gone stops being proposed within 2.5 x heartbeatMs."""
    EDGE_ID = "edge-silent"
    SHARDS = 2
    HEARTBEAT = 300

    def test_silent_joined_peer_is_closed_4002_and_no_longer_proposed(self):
        silent = self.client()
        joined, _ = silent.join("silent-1", "r", "p-silent")
        self.assertEqual(joined["heartbeatMs"], 300)
        started = time.monotonic()
        watcher, _, peers = self.joined_client("silent-1", "r", "p-awake")
        self.assertEqual(peer_ids(peers), ["p-silent"])
        gone_after = None
        while time.monotonic() - started < 3.0:
            ids = peer_ids(watcher.need_peers())  # traffic keeps the watcher alive
            if "p-silent" not in ids:
                gone_after = time.monotonic() - started
                break
            time.sleep(0.05)
        self.assertIsNotNone(gone_after, "the silent peer was still proposed 3 s later (heartbeat 0.3 s)")
        self.assertGreater(gone_after, 0.5, "removed before the 2.5 x heartbeat deadline: too early")
        # The silent peer got ping(s) and then 4002.
        code, _ = silent.expect_close()
        self.assertEqual(code, 4002)
        for _ in range(3):
            self.assertNotIn("p-silent", peer_ids(watcher.need_peers()))
            time.sleep(0.1)


class LargestPeers(EdgeCase):
    """maxPeers 64 (the spec's maximum), 128-byte ids and topologies made of
    control characters (escaped to 6 bytes each): the largest `peers` there
    is still goes out, to a newcomer and to need-peers (it used to exceed the
    reply buffer and vanish)."""
    EDGE_ID = "edge-largest-peers"
    SHARDS = 2

    @classmethod
    def setUpClass(cls):
        path = write_run_file("policy-64.json", json.dumps({"defaults": {"maxPeers": 64}}))
        cls.ARGS = ("--policy", path, "--messages-per-second", "1000", "--message-burst", "1000")
        super().setUpClass()

    def test_newcomer_and_need_peers_get_64_candidates(self):
        stream, rendition = "l" * 128, "r" * 128
        control = "".join(chr(1 + i % 31) for i in range(64))
        topology = {"region": control, "country": control, "asn": 4294967295, "network": control}
        for i in range(64):
            self.joined_client(stream, rendition, f"{i:03d}" + "p" * 125, topology=topology)
        c, _, peers = self.joined_client(stream, rendition, "n" * 128, topology=topology)
        self.assertGreater(len(c.last_raw.encode()), 64 * 3 * 64 * 6, "the reply is the large one")
        self.assertEqual(len(self.assert_peers_well_formed(peers, "n" * 128)), 64)
        self.assertEqual(peers["peers"][0]["topology"]["region"], control)
        again = c.need_peers(count=64, id="x" * 64)
        self.assertEqual(len(self.assert_peers_well_formed(again)), 64)
        self.assertEqual(again["ref"], "x" * 64)


if __name__ == "__main__":
    unittest.main()
