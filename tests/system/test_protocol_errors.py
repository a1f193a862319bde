"""Every error code of docs/protocol.md section 5, takeover with `session`, repeated
errors (1008), rate limit (rate-limited, 4003), against the real mf-edge."""

import json
import random
import time
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, SharedEdgeCase, UNLIMITED_SOURCE, AdminEdge, ManualClock, SdkClient, edge_config_file, encode_frame, peer_ids,
                          write_run_file)


def uid():
    return f"{random.randrange(1 << 40):x}"


class ErrorCase(SharedEdgeCase):
    SHARDS = 2
    EDGE_ID = "edge-errors"

    def joined(self, stream, rendition, peer, **fields):
        c = self.client()
        joined, _ = c.join(stream, rendition, peer, **fields)
        return c, joined

    def assert_error(self, client, text, code, ref=None, field=None, to=None):
        client.send(text)
        raw = client.recv_raw()
        err = json.loads(raw)
        self.assertEqual(err.get("type"), "error", f"{text!r} -> {raw!r}")
        self.assertEqual(err.get("code"), code, f"{text!r} -> {raw!r}")
        self.assertIsInstance(err.get("message"), str, raw)
        self.assertTrue(err["message"], raw)
        if ref is not None:
            self.assertEqual(err.get("ref"), ref, f"{text!r} -> {raw!r}: ref")
        if field is not None:
            self.assertIn(field, err["message"], f"{text!r} -> {raw!r}: the message must name the field")
        if to is not None:
            self.assertEqual(err.get("to"), to, raw)
        return err


class ErrorCodes(ErrorCase):
    def test_bad_json(self):
        c = self.client()
        for text in ("nope", '{"type":"ping"', "[1]", '"s"', "null", '{"type":"ping"} x', '{"a":1,}'):
            self.assert_error(c, text, "bad-json")
        self.assertEqual(c.request({"type": "ping", "t": 0}), {"type": "pong", "t": 0})

    def test_bad_request_names_the_field(self):
        p = "p-" + uid()
        cases = [
            ('{"type":"join","rendition":"r","peerId":"' + p + '","id":1}', "streamId", 1),
            ('{"type":"join","streamId":"a b","rendition":"r","peerId":"' + p + '","id":"i2"}', "streamId", "i2"),
            ('{"type":"join","streamId":"s","peerId":"' + p + '","id":3}', "rendition", 3),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":"' + "x" * 129 + '","id":4}', "peerId", 4),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":7,"id":5}', "peerId", 5),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":"' + p + '","caps":{"maxPeers":65},"id":6}',
             "maxPeers", 6),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":"' + p + '","caps":{"acceptingPeers":1}}',
             "acceptingPeers", None),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":"' + p + '","topology":{"asn":"x"}}',
             "asn", None),
            ('{"type":"join","streamId":"s","rendition":"r","peerId":"' + p + '","session":5}', "session", None),
            ('{"type":"ping","id":{"x":1}}', "id", None),
            ('{"type":"ping","id":"' + "i" * 65 + '"}', "id", None),
        ]
        c = self.client()
        for text, field, ref in cases:
            with self.subTest(text=text):
                self.assert_error(c, text, "bad-request", ref=ref, field=field)
        # On a joined connection (fresh: stay below the repeated-error limit).
        j, _ = self.joined("br-1", "r", "p-br-" + uid())
        for text, field, ref in [
            ('{"type":"signal","kind":"offer","data":1,"id":"s1"}', "to", "s1"),
            ('{"type":"signal","to":"x","kind":"hello","data":1,"id":"s2"}', "kind", "s2"),
            ('{"type":"signal","to":"x","kind":"offer","id":"s3"}', "data", "s3"),
            ('{"type":"need-peers","count":0,"id":"n1"}', "count", "n1"),
            ('{"type":"need-peers","count":65}', "count", None),
            ('{"type":"need-peers","exclude":"x"}', "exclude", None),
            ('{"type":"need-peers","exclude":[' + ",".join(f'"e{i}"' for i in range(65)) + "]}", "exclude", None),
            ('{"type":"stats","p2pBytes":-1,"id":"st"}', "p2pBytes", "st"),
            ('{"type":"stats","cdnBytes":1.5}', "cdnBytes", None),
            ('{"type":"update","caps":{"uploadKbps":-3}}', "uploadKbps", None),
        ]:
            with self.subTest(text=text):
                self.assert_error(j, text, "bad-request", ref=ref, field=field)
        self.assertEqual(j.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})

    def test_unknown_type(self):
        c = self.client()
        self.assert_error(c, '{"type":"subscribe","id":"u"}', "unknown-type", ref="u")
        self.assert_error(c, '{"type":"joined"}', "unknown-type")

    def test_unknown_type_is_quoted_cut_at_a_character_boundary(self):
        # The quote stops at 64 bytes; byte 64 is inside the 3-byte euro
        # sign, which must go whole (the reply stays valid UTF-8 and JSON).
        c = self.client()
        name = "a" * 63 + "\u20ac" * 4
        err = self.assert_error(c, json.dumps({"type": name}, ensure_ascii=False), "unknown-type")
        self.assertTrue(err["message"].endswith(": " + "a" * 63), err["message"])
        short = "b" * 61 + "\u20ac" + "c" * 10
        err = self.assert_error(c, json.dumps({"type": short}, ensure_ascii=False), "unknown-type")
        self.assertTrue(err["message"].endswith(": " + "b" * 61 + "\u20ac"), err["message"])

    def test_not_joined(self):
        c = self.client()
        for text in ('{"type":"signal","to":"x","kind":"offer","data":{},"id":"a"}',
                     '{"type":"need-peers","id":"a"}',
                     '{"type":"update","caps":{"acceptingPeers":true},"id":"a"}',
                     '{"type":"stats","p2pBytes":1,"id":"a"}'):
            with self.subTest(text=text):
                self.assert_error(c, text, "not-joined", ref="a")
        # After a leave: not joined again.
        c.join("nj-1", "r", "p-nj-" + uid())
        c.send({"type": "leave"})
        c.expect("left")
        self.assert_error(c, '{"type":"need-peers","id":5}', "not-joined", ref=5)

    def test_peer_not_found(self):
        c, _ = self.joined("pnf-1", "r", "p-pnf-" + uid())
        self.assert_error(c, '{"type":"signal","to":"ghost-1","kind":"bye","data":null,"id":"q"}', "peer-not-found",
                          ref="q", to="ghost-1")

    def test_peer_id_taken(self):
        peer = "p-taken-" + uid()
        holder, joined = self.joined("pit-1", "r", peer)
        other = self.client()
        self.assert_error(other, {"type": "join", "streamId": "pit-1", "rendition": "r", "peerId": peer, "id": "t1"},
                          "peer-id-taken", ref="t1")
        # A wrong session is no better; nor is another stream.
        self.assert_error(other, {"type": "join", "streamId": "pit-2", "rendition": "r", "peerId": peer,
                                  "session": "0" * 32}, "peer-id-taken")
        # The holder is untouched.
        self.assertEqual(holder.quiet(0.2), [])
        self.assertEqual(holder.request({"type": "ping", "t": 2}), {"type": "pong", "t": 2})
        # The refused connection can join under another id.
        other.join("pit-1", "r", peer + "-2")

    def test_takeover_with_session(self):
        peer = "p-take-" + uid()
        old, joined = self.joined("tk-1", "r", peer)
        watcher_id = "p-tkw-" + uid()
        watcher, _ = self.joined("tk-1", "r", watcher_id)
        new = self.client()
        joined2, peers = new.join("tk-1", "r", peer, session=joined["session"], id="resume")
        self.assertEqual(joined2["peerId"], peer)
        self.assertEqual(joined2.get("ref"), "resume")
        self.assertNotEqual(joined2["session"], joined["session"], "docs: a takeover rotates the session")
        self.assertRegex(joined2["session"], "^[0-9a-f]{32}$")
        self.assertIn(watcher_id, peer_ids(peers), "the new holder is joined and gets candidates")
        code, _ = old.expect_close()
        self.assertEqual(code, 4001, "the replaced connection is closed with 4001")
        # The departure of the replaced connection does not remove the new holder.
        time.sleep(0.2)
        for _ in range(5):
            self.assertIn(peer, peer_ids(watcher.need_peers()))
        # Signals reach the new holder.
        watcher.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": 1}})
        self.assertEqual(new.expect("signal")["data"], {"n": 1})
        # The presented session is spent: it takes nothing over again.
        intruder = self.client()
        self.assert_error(intruder, {"type": "join", "streamId": "tk-1", "rendition": "r", "peerId": peer,
                                     "session": joined["session"]}, "peer-id-taken")
        # The rotated one does.
        newer = self.client()
        newer.join("tk-1", "r", peer, session=joined2["session"])
        code, _ = new.expect_close()
        self.assertEqual(code, 4001)
        time.sleep(0.2)
        self.assertIn(peer, peer_ids(watcher.need_peers()))

    def test_takeover_into_another_stream(self):
        peer = "p-take2-" + uid()
        old, joined = self.joined("tk-2", "r", peer)
        watcher_old, _ = self.joined("tk-2", "r", "p-tk2w-" + uid())
        watcher_new, _ = self.joined("tk-3", "r", "p-tk3w-" + uid())
        new = self.client()
        new.join("tk-3", "r", peer, session=joined["session"])
        self.assertEqual(old.expect_close()[0], 4001)
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while peer in peer_ids(watcher_old.need_peers()):
            self.assertLess(time.monotonic(), deadline, "still proposed in the old stream after the takeover")
            time.sleep(0.05)
        self.assertIn(peer, peer_ids(watcher_new.need_peers()))


class StreamFullAndMeshDisabled(ErrorCase):
    @classmethod
    def setUpClass(cls):
        cls.policy = write_run_file("policy.json", json.dumps({"streams": {
            "full-1": {"maxViewers": 2}, "dark-1": {"meshEnabled": False}}}))
        cls.ARGS = ("--policy", cls.policy)
        super().setUpClass()

    def test_stream_full(self):
        a, joined = self.joined("full-1", "r1", "p-full-a")
        self.assertEqual(joined["policy"]["maxViewers"], 2)
        b, _ = self.joined("full-1", "r2", "p-full-b")  # the cap is per stream, any rendition
        c = self.client()
        c.send({"type": "join", "streamId": "full-1", "rendition": "r1", "peerId": "p-full-c", "id": "f"})
        raw = c.recv_raw()
        err = json.loads(raw)
        self.assertEqual((err.get("type"), err.get("code"), err.get("ref")), ("error", "stream-full", "f"), raw)
        self.assertIs(type(err.get("retryAfterMs")), int, f"stream-full needs an integer retryAfterMs: {raw}")
        self.assertGreater(err["retryAfterMs"], 0, raw)
        self.assertEqual(c.quiet(0.2), [])
        # Not joined: need-peers is not-joined.
        self.assert_error(c, '{"type":"need-peers"}', "not-joined")
        # Another stream is fine on the same connection.
        c.join("full-2", "r1", "p-full-c")
        # A switch into the full stream: stream-full, and in no swarm afterwards.
        self.assert_error(c, {"type": "join", "streamId": "full-1", "rendition": "r1", "peerId": "p-full-c"},
                          "stream-full")
        self.assert_error(c, '{"type":"need-peers"}', "not-joined")
        # After one leaves, there is room.
        a.send({"type": "leave"})
        a.expect("left")
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while True:
            c.send({"type": "join", "streamId": "full-1", "rendition": "r1", "peerId": "p-full-c"})
            m = c.recv()
            if m.get("type") == "joined":
                break
            self.assertEqual(m.get("code"), "stream-full", m)
            self.assertLess(time.monotonic(), deadline, "the slot of the peer that left was not freed")
            time.sleep(0.1)
        self.assertEqual(peer_ids(c.expect("peers")), [])  # b is on r2
        # A switch of rendition inside the full stream is not a new viewer: allowed.
        joined, peers = b.join("full-1", "r1", "p-full-b")
        self.assertEqual(joined["rendition"], "r1")
        self.assertEqual(peer_ids(peers), ["p-full-c"])

    def test_mesh_disabled(self):
        a = self.client()
        joined, _ = a.join("dark-1", "r", "p-dark-a", expect_peers=False)
        self.assertIs(joined["policy"]["meshEnabled"], False)
        b = self.client()
        b.join("dark-1", "r", "p-dark-b", expect_peers=False)
        self.assertEqual(a.quiet(0.3), [], "mesh disabled: no peers after joined")
        self.assertEqual(b.quiet(0.1), [])
        self.assert_error(a, '{"type":"signal","to":"p-dark-b","kind":"offer","data":{},"id":"m1"}',
                          "mesh-disabled", ref="m1")
        self.assertEqual(b.quiet(0.2), [], "no signal relayed while the mesh is disabled")
        self.assert_error(a, '{"type":"need-peers","id":"m2"}', "mesh-disabled", ref="m2")
        # update, stats and ping still work (no reply for the first two).
        a.send({"type": "update", "caps": {"acceptingPeers": True}})
        a.send({"type": "stats", "p2pBytes": 0, "cdnBytes": 10, "uploadedBytes": 0})
        self.assertEqual(a.request({"type": "ping", "t": 3}), {"type": "pong", "t": 3})
        # Another stream on the same edge has its mesh.
        c = self.client()
        joined, peers = c.join("lit-1", "r", "p-lit-c")
        self.assertIs(joined["policy"]["meshEnabled"], True)


class RepeatedErrors(ErrorCase):
    def test_twenty_errors_are_tolerated_the_twenty_first_closes_1008(self):
        closes_before = self.edge.metric("mf_edge_policy_closes_total", reason="error_limit")
        c = self.client()
        for i in range(20):
            self.assert_error(c, '{"type":"nope","id":' + str(i) + "}", "unknown-type", ref=i)
        self.assertEqual(c.request({"type": "ping", "t": "alive"}), {"type": "pong", "t": "alive"})
        c.send('{"type":"nope"}')
        code, _ = c.expect_close()
        self.assertEqual(code, 1008)
        # Counted before the close frame is sent.
        self.assertEqual(self.edge.metric("mf_edge_policy_closes_total", reason="error_limit"), closes_before + 1)

    def test_mixed_error_kinds_count_together(self):
        c = self.client()
        texts = ["x", '{"type":"nope"}', '{"type":"need-peers"}', '{"type":"join"}'] * 6
        for text in texts:
            c.send(text)
        code, seen = c.expect_close()
        self.assertEqual(code, 1008)
        self.assertGreaterEqual(len(seen), 20, "at least the first 20 errors are answered")


class RateLimit(ErrorCase):
    SHARDS = 1

    def test_burst_over_budget_drops_with_rate_limited(self):
        c = self.client()
        n = 112  # burst 100 + a few drops, fewer than 20: no 4003
        c.ws.send(b"".join(encode_frame(1, json.dumps({"type": "ping", "t": i}))
                           for i in range(n)))
        pongs, limited = [], 0
        for _ in range(n):
            m = c.recv()
            if m.get("type") == "pong":
                pongs.append(m["t"])
            else:
                self.assertEqual((m.get("type"), m.get("code")), ("error", "rate-limited"), m)
                limited += 1
        self.assertEqual(pongs, sorted(pongs))
        self.assertGreaterEqual(len(pongs), 100, "the burst of 100 must pass")
        self.assertGreaterEqual(limited, 5, f"{n} messages at once: the ones over the burst are dropped")
        self.assertEqual(len(pongs) + limited, n)
        time.sleep(0.5)  # refill
        self.assertEqual(c.request({"type": "ping", "t": "after"}), {"type": "pong", "t": "after"})

    def test_rate_limited_error_echoes_ref(self):
        # Spec 3: the id is echoed as ref in the error the message causes.
        c = self.client()
        c.ws.send(b"".join(encode_frame(1, json.dumps({"type": "ping", "t": i, "id": f"rl-{i}"})) for i in range(105)))
        errors = []
        for _ in range(105):
            m = c.recv()
            if m.get("type") == "error":
                errors.append(m)
        self.assertTrue(errors, "no rate-limited error")
        for m in errors:
            self.assertEqual(m.get("code"), "rate-limited")
            self.assertIn("ref", m, f"rate-limited error without the dropped message's id as ref: {m}")
            self.assertTrue(str(m["ref"]).startswith("rl-"), m)

    def test_persistent_flood_closes_4003(self):
        c = self.client()
        c.ws.send(b"".join(encode_frame(1, '{"type":"ping"}') for _ in range(400)))
        code, seen = c.expect_close(timeout=EXPECT_TIMEOUT_S)
        self.assertEqual(code, 4003)
        self.assertGreaterEqual(len(seen), 100)

    @needs_test_hooks
    def test_configured_budget(self):
        # The edge's clock moves only when the test moves it: exactly the
        # burst passes, and a token comes back only when time is advanced.
        with ManualClock() as clock, AdminEdge(args=["--config", edge_config_file(dict(
                UNLIMITED_SOURCE, messages_per_second=5, message_burst=5))], shards=1) as edge:
            c = SdkClient(edge)
            try:
                c.ws.send(b"".join(encode_frame(1, json.dumps({"type": "ping", "t": i})) for i in range(8)))
                replies = [c.recv() for _ in range(8)]
                self.assertEqual([m["type"] for m in replies[:5]], ["pong"] * 5)
                self.assertEqual([m.get("code") for m in replies[5:]], ["rate-limited"] * 3)
                self.assertEqual(c.request({"type": "ping", "t": "y"}).get("code"), "rate-limited",
                                 "no time passed: no token")
                clock.advance(200)  # 5/s: one token back
                self.assertEqual(c.request({"type": "ping", "t": "x"}), {"type": "pong", "t": "x"})
            finally:
                c.close()
                clock.release()


if __name__ == "__main__":
    unittest.main()
