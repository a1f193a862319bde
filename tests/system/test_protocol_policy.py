"""Policy (docs/protocol.md section 6): --policy FILE, reload on SIGHUP and on file
change, `policy` pushed only to peers of affected streams, kill switch
without restart, invalid documents keep the old policy."""

import json
import os
import signal
import time
import unittest

from edge_process import (EXPECT_TIMEOUT_S, UNLIMITED_SOURCE, AdminEdge, SdkClient, edge_config_file, peer_ids, rewrite_file,
                          write_run_file)

BUILT_IN = {"meshEnabled": True, "maxPeers": 8, "maxViewers": 0, "uploadCapKbps": 0, "cmafMode": "off",
            "offerTimeoutMs": 10000}


def effective(*overlays):
    policy = dict(BUILT_IN)
    for overlay in overlays:
        policy.update(overlay)
    return policy


class PolicyCase(unittest.TestCase):
    WATCH = False
    INITIAL = {"defaults": {}, "streams": {"pol-a": {"maxPeers": 5}}}

    def setUp(self):
        # One edge per test: reloads change global state.
        self.path = write_run_file("policy.json", json.dumps(self.INITIAL))
        config = edge_config_file(UNLIMITED_SOURCE, extra=f"[policy]\nwatch = {'true' if self.WATCH else 'false'}\n")
        self.edge = AdminEdge(args=["--config", config, "--policy", self.path], shards=2, edge_id="edge-policy")
        self.edge.start()
        self.addCleanup(self.edge.__exit__, None, None, None)

    def joined(self, stream, peer, rendition="r", expect_peers=True):
        c = SdkClient(self.edge)
        self.addCleanup(c.close)
        joined, _ = c.join(stream, rendition, peer, expect_peers=expect_peers)
        return c, joined

    def reload(self, document, sighup=True):
        rewrite_file(self.path, document if isinstance(document, str) else json.dumps(document))
        if sighup:
            self.edge.send_signal(signal.SIGHUP)

    def assert_push(self, client, expected, timeout=EXPECT_TIMEOUT_S):
        raw = client.recv_raw(timeout)
        message = json.loads(raw)
        self.assertEqual(set(message), {"type", "policy"}, raw)
        self.assertEqual(message["type"], "policy", raw)
        for field, value in expected.items():
            self.assertEqual(message["policy"].get(field), value, f"{field} in {raw}")
        return message["policy"]


class SighupReload(PolicyCase):
    def test_override_change_pushed_only_to_that_stream(self):
        a, ja = self.joined("pol-a", "p-a1")
        a2, _ = self.joined("pol-a", "p-a2", rendition="other")
        b, jb = self.joined("pol-b", "p-b1")
        self.assertEqual(ja["policy"], effective({"maxPeers": 5}))
        self.assertEqual(jb["policy"], BUILT_IN)
        self.reload({"streams": {"pol-a": {"maxPeers": 3, "offerTimeoutMs": 5000}}})
        self.assertEqual(self.assert_push(a, {}), effective({"maxPeers": 3, "offerTimeoutMs": 5000}))
        self.assertEqual(self.assert_push(a2, {}), effective({"maxPeers": 3, "offerTimeoutMs": 5000}))
        self.assertEqual(b.quiet(0.5), [], "a stream whose policy did not change gets no push")
        self.assertEqual(a.quiet(0.1), [], "one push per change")
        # New joins get the new policy; the new maxPeers applies.
        _, j = self.joined("pol-a", "p-a3")
        self.assertEqual(j["policy"]["maxPeers"], 3)
        for i in range(4):
            self.joined("pol-a", f"p-a-more-{i}")
        self.assertEqual(len(a.need_peers(count=10)["peers"]), 3)

    def test_defaults_change_pushed_to_streams_that_inherit_it(self):
        a, _ = self.joined("pol-a", "p-a1")
        b, _ = self.joined("pol-b", "p-b1")
        self.reload({"defaults": {"cmafMode": "on"},
                     "streams": {"pol-a": {"maxPeers": 5}, "pol-c": {"cmafMode": "on"}}})
        # pol-c joins now, already with cmafMode on from its entry: unaffected by the next reload.
        self.assert_push(a, {"cmafMode": "on", "maxPeers": 5})
        self.assert_push(b, {"cmafMode": "on", "maxPeers": 8})
        c, jc = self.joined("pol-c", "p-c1")
        self.assertEqual(jc["policy"]["cmafMode"], "on")
        self.reload({"defaults": {"cmafMode": "advertise-only"},
                     "streams": {"pol-a": {"maxPeers": 5}, "pol-c": {"cmafMode": "on"}}})
        self.assert_push(a, {"cmafMode": "advertise-only"})
        self.assert_push(b, {"cmafMode": "advertise-only"})
        self.assertEqual(c.quiet(0.5), [], "pol-c overrides cmafMode: its effective policy did not change")

    def test_kill_switch_without_restart(self):
        a, _ = self.joined("pol-k", "p-k1")
        b, _ = self.joined("pol-k", "p-k2")
        a.send({"type": "signal", "to": "p-k2", "kind": "offer", "data": 1})
        self.assertEqual(b.expect("signal")["data"], 1)
        self.reload({"defaults": {"meshEnabled": False}})
        self.assert_push(a, {"meshEnabled": False})
        self.assert_push(b, {"meshEnabled": False})
        a.send({"type": "signal", "to": "p-k2", "kind": "offer", "data": 2, "id": "k"})
        err = a.recv()
        self.assertEqual((err.get("type"), err.get("code"), err.get("ref")), ("error", "mesh-disabled", "k"), err)
        a.send({"type": "need-peers"})
        self.assertEqual(a.recv().get("code"), "mesh-disabled")
        self.assertEqual(b.quiet(0.2), [], "no signal relayed with the mesh off")
        # A new join: joined without peers.
        c, jc = self.joined("pol-k", "p-k3", expect_peers=False)
        self.assertIs(jc["policy"]["meshEnabled"], False)
        self.assertEqual(c.quiet(0.3), [])
        # Back on.
        self.reload({"defaults": {"meshEnabled": True}})
        for client in (a, b, c):
            self.assert_push(client, {"meshEnabled": True})
        a.send({"type": "signal", "to": "p-k2", "kind": "offer", "data": 3})
        self.assertEqual(b.expect("signal")["data"], 3)
        self.assertEqual(sorted(peer_ids(a.need_peers())), ["p-k2", "p-k3"])

    def test_invalid_document_keeps_old_policy(self):
        a, _ = self.joined("pol-a", "p-a1")
        for bad in ("{not json", json.dumps({"defaults": {"maxPeers": 65}}),
                    json.dumps({"defaults": {"meshEnabled": "no"}}), json.dumps({"defaults": {"typo": 1}})):
            self.reload(bad)
            self.assertEqual(a.quiet(0.4), [], f"no push for an invalid document {bad!r}")
            self.assertTrue(self.edge.alive(), "the edge must survive an invalid policy document")
            _, j = self.joined("pol-a", f"p-a-{hash(bad) & 0xffff}")
            self.assertEqual(j["policy"], effective({"maxPeers": 5}), "the old policy stays in force")
        # A valid document afterwards is taken.
        self.reload({"streams": {"pol-a": {"maxPeers": 2}}})
        self.assert_push(a, {"maxPeers": 2})

    def test_no_push_when_the_effective_policy_is_unchanged(self):
        a, _ = self.joined("pol-a", "p-a1")
        # Same content, other formatting and order.
        self.reload('{ "streams" : { "pol-a" : { "maxPeers" : 5 } }, "defaults": {"maxViewers": 0} }')
        self.assertEqual(a.quiet(0.6), [])


class FileWatch(PolicyCase):
    WATCH = True

    def test_rewrite_without_sighup_is_pushed(self):
        a, _ = self.joined("pol-a", "p-a1")
        b, _ = self.joined("pol-b", "p-b1")
        started = time.monotonic()
        self.reload({"streams": {"pol-a": {"maxPeers": 4}}}, sighup=False)
        # No SIGHUP: the push itself proves the edge noticed the change (the
        # file is checked every second; the timeout is only against a hang).
        self.assert_push(a, {"maxPeers": 4}, timeout=15.0)
        print(f"policy file change pushed after {time.monotonic() - started:.2f} s", flush=True)
        self.assertEqual(b.quiet(0.3), [])

    def test_atomic_replace_is_noticed(self):
        a, _ = self.joined("pol-b", "p-b1")
        new = self.path + ".new"
        with open(new, "w") as f:
            f.write(json.dumps({"defaults": {"uploadCapKbps": 800}}))
        bumped = os.stat(self.path).st_mtime_ns + 20_000_000
        os.utime(new, ns=(bumped, bumped))
        os.replace(new, self.path)
        self.assert_push(a, {"uploadCapKbps": 800})


if __name__ == "__main__":
    unittest.main()
