"""Cross-edge identity (docs/cluster.md): peerId uniqueness and `session`
takeover across edges (4001 to the old holder on whichever edge, one holder
after a race), the cluster-wide viewer cap (maxViewers), and the policy
document in Valkey (pushed to peers on every edge within a second; Valkey's
document wins over a policy file while its key exists). Real redis-server,
real mf-edge processes, independent SDK clients; loopback only.

The spec (sdk-protocol.md section 5): a `join` with a peerId that a live
connection holds, without that connection's `session`, gets `peer-id-taken`;
with it, it takes the identity over and the old connection is closed 4001."""

import json
import threading
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, SdkClient, wait_until, free_port, peer_ids, write_run_file
from redis_process import RedisClient, RedisServer
from test_cross_edge import ClusterTestCase, TwoEdgeCluster, cluster_edge, metric, tag


def join_reply(client, stream, rendition, peer, **fields):
    """Sends a join; returns the first reply (joined or error)."""
    message = {"type": "join", "streamId": stream, "rendition": rendition, "peerId": peer}
    message.update(fields)
    client.send(message)
    return client.recv(timeout=EXPECT_TIMEOUT_S)


def owner_edge(redis, peer):
    with RedisClient(redis.port) as r:
        record = r.command("GET", f"mf:{{p:{peer}}}:own")
    return record


def closed_with(client, timeout=0.0):
    """The close code if the connection was closed by then, else None."""
    try:
        code, _ = client.expect_close(timeout=timeout)
        return code
    except (TimeoutError, AssertionError):
        return None


class ClusterIdentityTest(TwoEdgeCluster):
    def client(self, edge):
        c = SdkClient(edge)
        self.addCleanup(c.close)
        return c

    def test_takeover_across_edges_closes_the_old_holder_with_4001(self):
        stream, peer = f"s-{tag()}", f"p-{tag()}"
        old, first = self.client(self.a), None
        first, _ = old.join(stream, "r1", peer)
        watcher, _ = self.joined(self.a, stream, "r1", f"w-{tag()}")
        new = self.client(self.b)
        joined, _ = new.join(stream, "r1", peer, session=first["session"], id="resume")
        self.assertEqual((joined["edge"], joined["ref"]), ("edge-b", "resume"))
        self.assertNotEqual(joined["session"], first["session"], "a takeover rotates the session")
        code, _ = old.expect_close()
        self.assertEqual(code, 4001)
        self.assertIn("edge-b", owner_edge(self.redis, peer))
        # Signals from edge-a reach the new holder on edge-b; the old holder's
        # departure did not remove it.
        time.sleep(0.2)
        self.assertIn("edge-b", owner_edge(self.redis, peer))
        watcher.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": 1}})
        self.assertEqual(new.expect("signal")["data"], {"n": 1})
        # The spent session takes nothing over, on either edge.
        for edge in (self.a, self.b):
            reply = join_reply(self.client(edge), stream, "r1", peer, session=first["session"])
            self.assertEqual(reply.get("code"), "peer-id-taken", reply)
        # And back to edge-a with the rotated session: edge-b's holder goes.
        back = self.client(self.a)
        back.join(stream, "r1", peer, session=joined["session"])
        self.assertEqual(new.expect_close()[0], 4001)
        self.assertIn("edge-a", owner_edge(self.redis, peer))
        self.assertGreaterEqual(metric(self.b, "mf_edge_cluster_takeovers_total"), 1)
        self.assertGreaterEqual(metric(self.a, "mf_edge_cluster_takeovers_total"), 1)

    def test_location_cache_follows_a_takeover_on_another_edge(self):
        """edge-a caches where a peer of edge-b is (docs/cluster.md, "The
        peer-location cache"): a stream of signals to it costs one PUBLISH
        each, no lookup. The peer is then taken over by a new connection on
        edge-b: the next signal from edge-a reaches the new holder (it
        bounced off the stale place and was looked up again), and after a
        takeover back onto edge-a, signals are local."""
        stream, peer = f"s-{tag()}", f"p-{tag()}"
        holder = self.client(self.b)
        first, _ = holder.join(stream, "r1", peer)
        self.assertIn("edge-b", owner_edge(self.redis, peer))
        sender, _ = self.joined(self.a, stream, "r1", f"w-{tag()}")
        # The first signal may look its target up (or find it cached by the
        # sender's `peers`); it is answered before the stream starts.
        sender.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": 0}})
        self.assertEqual(holder.expect("signal")["data"], {"n": 0})
        hits = metric(self.a, "mf_edge_cluster_location_hits_total")
        lookups = metric(self.a, "mf_edge_cluster_location_lookups_total")
        count = 20
        for i in range(1, count + 1):
            sender.send({"type": "signal", "to": peer, "kind": "candidate", "data": {"n": i}})
        for i in range(1, count + 1):
            self.assertEqual(holder.expect("signal")["data"], {"n": i})
        self.assertEqual(metric(self.a, "mf_edge_cluster_location_lookups_total"), lookups,
                         "a steady stream to a known peer looks nothing up")
        self.assertEqual(metric(self.a, "mf_edge_cluster_location_hits_total"), hits + count)
        # Taken over on edge-b by a new connection: edge-a's cache names the
        # old one.
        bounced = metric(self.a, "mf_edge_cluster_signals_bounced_total")
        new = self.client(self.b)
        joined, _ = new.join(stream, "r1", peer, session=first["session"])
        self.assertEqual(holder.expect_close()[0], 4001)
        sender.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": "after"}})
        self.assertEqual(new.expect("signal")["data"], {"n": "after"})
        self.assertEqual(metric(self.a, "mf_edge_cluster_signals_bounced_total"), bounced + 1)
        # The cache holds the new place: the next signals cost no lookup.
        lookups = metric(self.a, "mf_edge_cluster_location_lookups_total")
        sender.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": "cached"}})
        self.assertEqual(new.expect("signal")["data"], {"n": "cached"})
        self.assertEqual(metric(self.a, "mf_edge_cluster_location_lookups_total"), lookups)
        # Taken over onto edge-a itself: the claim forgets the cached place,
        # and the signal is delivered on the edge.
        back = self.client(self.a)
        back.join(stream, "r1", peer, session=joined["session"])
        self.assertEqual(new.expect_close()[0], 4001)
        sender.send({"type": "signal", "to": peer, "kind": "offer", "data": {"n": "local"}})
        self.assertEqual(back.expect("signal")["data"], {"n": "local"})
        self.assertEqual(sender.quiet(0.2), [])

    def test_join_without_takeover_rights_gets_peer_id_taken(self):
        stream, peer = f"s-{tag()}", f"p-{tag()}"
        holder, _ = self.joined(self.a, stream, "r1", peer)
        for session in (None, "not-the-session"):
            intruder = self.client(self.b)
            fields = {"id": "j1"} if session is None else {"id": "j1", "session": session}
            reply = join_reply(intruder, stream, "r1", peer, **fields)
            self.assertEqual((reply["type"], reply.get("code"), reply.get("ref")), ("error", "peer-id-taken", "j1"),
                             reply)
            # The refused connection stays usable under another id.
            intruder.join(stream, "r1", f"other-{tag()}")
        self.assertEqual(holder.request({"type": "ping", "t": 5}), {"type": "pong", "t": 5})
        self.assertIn("edge-a", owner_edge(self.redis, peer))
        self.assertGreaterEqual(metric(self.b, "mf_edge_cluster_claims_refused_total"), 2)

    def _race(self, stream, peer, **fields):
        """Two joins of `peer` at once, one per edge: (client, reply) each."""
        clients = [self.client(self.a), self.client(self.b)]
        replies = [None, None]
        go = threading.Barrier(2)

        def run(i):
            go.wait()
            replies[i] = join_reply(clients[i], stream, "r1", peer, **fields)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        return list(zip(clients, replies))

    def test_race_of_two_fresh_joins_leaves_exactly_one_holder(self):
        stream = f"s-{tag()}"
        for _ in range(10):
            peer = f"race-{tag()}"
            results = self._race(stream, peer)
            kinds = sorted(reply["type"] for _, reply in results)
            self.assertEqual(kinds, ["error", "joined"], results)
            for client, reply in results:
                if reply["type"] == "error":
                    self.assertEqual(reply["code"], "peer-id-taken")
                else:
                    self.assertIn(reply["edge"], owner_edge(self.redis, peer))

    def test_race_of_two_takeovers_leaves_exactly_one_holder(self):
        stream = f"s-{tag()}"
        for _ in range(5):
            peer = f"race-{tag()}"
            old = self.client(self.a)
            first, _ = old.join(stream, "r1", peer)
            results = self._race(stream, peer, session=first["session"])
            self.assertEqual(old.expect_close()[0], 4001)
            # Both may have been accepted one after the other (the later
            # replaces the earlier, 4001) or one refused; at the end exactly
            # one connection holds the peerId, and it is the one Valkey names.
            joined = [(client, reply) for client, reply in results if reply["type"] == "joined"]
            closed = set()

            def at_most_one_open():
                for k, (client, _) in enumerate(joined):
                    if k not in closed and closed_with(client, timeout=0.05) is not None:
                        closed.add(k)
                return len(joined) - len(closed) <= 1
            wait_until(at_most_one_open, EXPECT_TIMEOUT_S, what=lambda: f"one holder of {peer} left: {results}")
            alive = [joined[k] for k in range(len(joined)) if k not in closed]
            self.assertEqual(len(alive), 1, results)
            client, reply = alive[0]
            self.assertIn(reply["edge"], owner_edge(self.redis, peer))
            self.assertEqual(client.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})

    def test_cluster_wide_max_viewers(self):
        stream = f"capped-{tag()}"
        policy = {"streams": {stream: {"maxViewers": 3}}}
        with RedisClient(self.redis.port) as r:
            r.command("SET", "mf:policy", json.dumps(policy))
            r.command("PUBLISH", "mf:policy", "changed")

        def capped(edge):
            probe = self.client(edge)
            joined, _ = probe.join(f"probe-{tag()}", "r1", f"probe-{tag()}")
            probe.send({"type": "leave"})
            probe.expect("left")
            return probe, joined

        try:
            # Both edges have the policy (a join to another stream shows the defaults).
            for edge in (self.a, self.b):
                def has_cap(edge=edge):
                    c = self.client(edge)
                    # `joined` carries the policy in force; what follows it
                    # (`peers`, or a `policy` push while the new policy
                    # spreads) is not read: the probe closes.
                    joined, _ = c.join(stream, "r1", f"cap-probe-{tag()}", expect_peers=False)
                    c.close()
                    return joined["policy"]["maxViewers"] == 3
                wait_until(has_cap, EXPECT_TIMEOUT_S, interval=0.1, what="the capped policy on " + edge.edge_id)
            # The probes left (closed): their seats were freed at once.
            wait_until(lambda: self._viewers(stream) == 0, EXPECT_TIMEOUT_S, what="probe seats freed")
            holders = [self.joined(self.a, stream, "r1", f"v1-{tag()}")[0],
                       self.joined(self.b, stream, "r2", f"v2-{tag()}")[0],
                       self.joined(self.a, stream, "r1", f"v3-{tag()}")[0]]
            for edge in (self.a, self.b):
                fourth = self.client(edge)
                reply = join_reply(fourth, stream, "r1", f"v4-{tag()}", id="full")
                self.assertEqual((reply["type"], reply.get("code"), reply.get("ref")), ("error", "stream-full", "full"),
                                 reply)
                self.assertGreater(reply["retryAfterMs"], 0)
            self.assertGreaterEqual(metric(self.b, "mf_edge_cluster_viewers_full_total"), 1)
            # One viewer leaves on edge-b: a seat is free anywhere at once.
            holders[1].send({"type": "leave"})
            holders[1].expect("left")
            late = self.client(self.a)
            wait_until(lambda: join_reply(late, stream, "r1", f"v5-{tag()}")["type"] == "joined", EXPECT_TIMEOUT_S,
                     what="a seat after a leave")
            # Three viewers again: full again.
            reply = join_reply(self.client(self.b), stream, "r1", f"v6-{tag()}")
            self.assertEqual(reply.get("code"), "stream-full")
        finally:
            with RedisClient(self.redis.port) as r:
                r.command("DEL", "mf:policy")
                r.command("PUBLISH", "mf:policy", "changed")

    def _viewers(self, stream):
        with RedisClient(self.redis.port) as r:
            return r.command("ZCARD", f"mf:{{s:{stream}}}:viewers")

    def test_policy_change_in_valkey_reaches_peers_on_both_edges_within_a_second(self):
        stream = f"pol-{tag()}"
        ca, cb = self.client(self.a), self.client(self.b)
        joined_a, _ = ca.join(stream, "r1", f"a-{tag()}")
        cb.join(stream, "r1", f"b-{tag()}")
        self.assertEqual(joined_a["policy"]["maxPeers"], 8)
        policy = {"defaults": {"maxPeers": 4}, "streams": {stream: {"maxPeers": 3, "offerTimeoutMs": 7000}}}
        try:
            with RedisClient(self.redis.port) as r:
                started = time.monotonic()
                r.command("SET", "mf:policy", json.dumps(policy))
                r.command("PUBLISH", "mf:policy", "1")
            # Timeouts here are only against a hang: the pushes themselves
            # prove the paths (how long they took is printed, not asserted).
            for c in (ca, cb):
                pushed = c.expect("policy", timeout=15.0)
                self.assertEqual((pushed["policy"]["maxPeers"], pushed["policy"]["offerTimeoutMs"]), (3, 7000))
            print(f"policy through Valkey's channel reached both edges in {time.monotonic() - started:.2f} s", flush=True)
            # Without a notification, the key is read every second anyway.
            policy["streams"][stream]["maxPeers"] = 2
            with RedisClient(self.redis.port) as r:
                started = time.monotonic()
                r.command("SET", "mf:policy", json.dumps(policy))
            for c in (ca, cb):
                self.assertEqual(c.expect("policy", timeout=15.0)["policy"]["maxPeers"], 2)
            print(f"policy key re-read without a notification in {time.monotonic() - started:.2f} s", flush=True)
            # A document that does not parse is refused; the current one stays.
            with RedisClient(self.redis.port) as r:
                r.command("SET", "mf:policy", '{"defaults": {"maxPeers": "many"}}')
                r.command("PUBLISH", "mf:policy", "1")
            self.assertEqual(ca.quiet(0.5), [])
            wait_until(lambda: "policy: Valkey key mf:policy" in self.a.stderr_text(), EXPECT_TIMEOUT_S, what="refusal logged")
            # A new joiner gets the Valkey policy in `joined`.
            joined, _ = self.client(self.b).join(stream, "r1", f"c-{tag()}")
            self.assertEqual(joined["policy"]["maxPeers"], 2)
        finally:
            with RedisClient(self.redis.port) as r:
                r.command("DEL", "mf:policy")
                r.command("PUBLISH", "mf:policy", "1")
        # The key removed: back to the defaults (no policy file), pushed.
        for c in (ca, cb):
            self.assertEqual(c.expect("policy")["policy"]["maxPeers"], 8)
        self.assertGreaterEqual(metric(self.a, "mf_edge_cluster_policy_loads_total"), 2)


class ValkeyPolicyOverFileTest(ClusterTestCase):
    def test_valkey_policy_wins_over_the_file_while_its_key_exists(self):
        stream = f"pf-{tag()}"
        path = write_run_file("policy.json", json.dumps({"streams": {stream: {"maxPeers": 5}}}))
        with RedisServer() as redis:
            with RedisClient(redis.port) as r:
                r.command("SET", "mf:policy", json.dumps({"streams": {stream: {"maxPeers": 2}}}))
            edge = cluster_edge(redis.address, "edge-pf")
            edge.args += ["--policy", path]
            with edge:
                wait_until(lambda: metric(edge, "mf_edge_valkey_up") == 1, EXPECT_TIMEOUT_S, what="edge up")
                c = SdkClient(edge)
                self.addCleanup(c.close)

                def valkey_policy():
                    joined, _ = c.join(stream, "r1", f"p-{tag()}")
                    c.send({"type": "leave"})
                    c.expect("left")
                    return joined["policy"]["maxPeers"] == 2
                wait_until(valkey_policy, EXPECT_TIMEOUT_S, interval=0.1, what="Valkey's policy applied over the file's")
                viewer, _ = self.joined(edge, stream, "r1", f"v-{tag()}")
                with RedisClient(redis.port) as r:
                    r.command("DEL", "mf:policy")
                    r.command("PUBLISH", "mf:policy", "gone")
                self.assertEqual(viewer.expect("policy")["policy"]["maxPeers"], 5, "the file's again")


class ValkeyDownIdentityTest(ClusterTestCase):
    def test_takeover_and_caps_are_local_while_valkey_is_down(self):
        address = f"127.0.0.1:{free_port()}"  # nobody listens
        stream = f"local-{tag()}"
        path = write_run_file("policy.json", json.dumps({"streams": {stream: {"maxViewers": 2}}}))
        edge = cluster_edge(address, "edge-alone")
        edge.args += ["--policy", path]
        with edge:
            self.assertEqual(metric(edge, "mf_edge_valkey_up"), 0)
            peer = f"p-{tag()}"
            old = SdkClient(edge)
            self.addCleanup(old.close)
            first, _ = old.join(stream, "r1", peer)
            intruder = SdkClient(edge)
            self.addCleanup(intruder.close)
            self.assertEqual(join_reply(intruder, stream, "r1", peer).get("code"), "peer-id-taken")
            new = SdkClient(edge)
            self.addCleanup(new.close)
            new.join(stream, "r1", peer, session=first["session"])
            self.assertEqual(old.expect_close()[0], 4001)
            self.joined(edge, stream, "r1", f"second-{tag()}")
            self.assertEqual(join_reply(intruder, stream, "r1", f"third-{tag()}").get("code"), "stream-full")


if __name__ == "__main__":
    unittest.main()
