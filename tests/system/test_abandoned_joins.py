"""Joins abandoned in flight give back everything they obtained
(docs/architecture.md, "Obligations"): a `join` followed by `leave` in the
same TCP segment, or by an abrupt close, on an edge with several shards, and
a seeded random race of join, switch, takeover, leave and close, leave no
peerId claimed (mf_edge_peer_claims back to 0) and no peer in a swarm; every
peerId of the run can be joined again afterwards. The cluster variant checks
that no owner key stays in Valkey either (a ghost would block the peerId on
every edge until its TTL). Real mf-edge, real redis-server, raw clients."""

import json
import random
import socket
import struct
import time
import unittest

from edge_process import (SharedEdgeCase, OP_TEXT, UNLIMITED_SOURCE, AdminEdge, PeerClosed, SdkClient, admin_get, edge_config_file,
                          encode_frame, parse_prometheus, EXPECT_TIMEOUT_S, wait_until)
from redis_process import RedisClient
from test_cross_edge import TwoEdgeCluster, tag

LIMITS = ["--messages-per-second", "5000", "--message-burst", "5000"]


def frame(message):
    return encode_frame(OP_TEXT, json.dumps(message, separators=(",", ":")).encode())


def join_message(stream, peer, **fields):
    message = {"type": "join", "streamId": stream, "rendition": "r1", "peerId": peer}
    message.update(fields)
    return message


def abort(client):
    """Closes the TCP connection at once (RST, no close frame)."""
    client.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.ws.sock.close()


def drain(client):
    """Every message already received, without waiting (replies of a
    pipelined burst); [] once the connection is gone."""
    seen = []
    while True:
        try:
            seen.append(json.loads(client.ws.recv_message(timeout=0.001, answer_pings=True)))
        except (TimeoutError, PeerClosed, AssertionError, OSError, ValueError):
            return seen


def gauges(edge):
    """The unlabelled samples of /metrics. A 503 ("busy": a shard's mailbox
    refused the collection request) is asked again."""
    deadline = time.monotonic() + 10
    while True:
        response = admin_get(edge.admin_port, "/metrics")
        if response.status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    samples, _ = parse_prometheus(response.body.decode())
    return {name: value for (name, labels), value in samples.items() if not labels}


def wait_released(edge, what):
    """Waits for the effect itself: no claim and no joined peer left."""
    wait_until(lambda: (lambda g: g["mf_edge_peer_claims"] == 0 and g["mf_edge_peers_joined"] == 0)(gauges(edge)), EXPECT_TIMEOUT_S,
             what=f"{what}: every claim and seat given back")


class AbandonedJoins(SharedEdgeCase):
    SHARDS = 4
    EDGE_ID = "edge-abandon"
    ARGS = LIMITS

    def assert_all_join_again(self, stream, peers):
        for peer in peers:
            c = self.client()
            joined, _ = c.join(stream, "r1", peer)
            self.assertEqual(joined["peerId"], peer)
            c.send({"type": "leave"})
            c.expect("left")
            c.close()
        wait_released(self.edge, "rejoin")

    def test_join_then_leave_in_one_segment_gives_the_peer_id_back(self):
        stream = f"s-{tag()}"
        peers = [f"seg-{tag()}-{i}" for i in range(60)]
        for peer in peers:
            c = self.client()
            c.ws.send(frame(join_message(stream, peer)) + frame({"type": "leave", "id": "bye"}))
            # `left` answers the leave whatever the join's progress was.
            while True:
                message = c.recv(timeout=EXPECT_TIMEOUT_S)
                if message["type"] == "left":
                    break
                self.assertIn(message["type"], ("joined", "peers"), message)
            c.close()
        wait_released(self.edge, "join+leave")
        g = gauges(self.edge)
        self.assertEqual(g["mf_edge_obligation_anomalies_total"], 0)
        self.assert_all_join_again(stream, peers)

    def test_join_then_abrupt_close_gives_the_peer_id_back(self):
        stream = f"s-{tag()}"
        peers = [f"rst-{tag()}-{i}" for i in range(60)]
        for peer in peers:
            c = SdkClient(self.edge)
            c.ws.send(frame(join_message(stream, peer)))
            abort(c)
        wait_released(self.edge, "join+close")
        self.assert_all_join_again(stream, peers)

    def test_seeded_race_of_join_switch_takeover_leave_close(self):
        seed = random.randrange(1 << 32)
        rng = random.Random(seed)
        streams = [f"race-{tag()}-{i}" for i in range(3)]
        peers = [f"race-{tag()}-{i}" for i in range(12)]
        sessions = {}
        open_clients = []
        for peer in peers:
            c = SdkClient(self.edge)
            joined, _ = c.join(streams[0], "r1", peer)
            sessions[peer] = joined["session"]
            open_clients.append((c, peer))
        for _ in range(300):
            op = rng.choice(["join", "switch", "takeover", "leave", "close", "join+leave", "join+close"])
            peer = rng.choice(peers)
            stream = rng.choice(streams)
            if op in ("switch", "leave", "close") and open_clients:
                c, held = rng.choice(open_clients)
                try:
                    if op == "switch":
                        c.send(join_message(stream, held))
                    elif op == "leave":
                        c.send({"type": "leave"})
                    else:
                        open_clients.remove((c, held))
                        abort(c)
                except OSError:
                    # The edge closed it already (a takeover closes the old
                    # holder with 4001): what the race is allowed to do.
                    open_clients.remove((c, held))
                    abort(c)
                continue
            if len(open_clients) > 40:
                c, _ = open_clients.pop(0)
                abort(c)
            c = SdkClient(self.edge)
            fields = {"session": sessions[peer]} if op == "takeover" and peer in sessions else {}
            data = frame(join_message(stream, peer, **fields))
            if op == "join+leave":
                data += frame({"type": "leave"})
            c.ws.send(data)
            if op == "join+close":
                abort(c)
                continue
            open_clients.append((c, peer))
            for c, _ in open_clients:
                for message in drain(c):
                    if message.get("type") == "joined":
                        sessions[message["peerId"]] = message["session"]
        for c, _ in open_clients:
            abort(c)
        try:
            wait_released(self.edge, f"race (seed {seed})")
        except AssertionError as e:
            raise AssertionError(f"{e}; gauges {gauges(self.edge)}") from None
        self.assertEqual(gauges(self.edge)["mf_edge_obligation_anomalies_total"], 0, f"seed {seed}")
        self.assert_all_join_again(streams[1], peers)


class AbandonedJoinsAcrossEdges(TwoEdgeCluster):
    """A long presence TTL: a ghost owner key would block the peerId on the
    other edge for 60 s; given back, the other edge can claim it at once."""

    EDGE_ARGS = ("--valkey-ttl-ms", "60000")
    VALKEY_WAIT_S = EXPECT_TIMEOUT_S

    def test_abandoned_joins_leave_no_owner_key_and_the_other_edge_can_claim(self):
        stream = f"x-{tag()}"
        peers = [f"xe-{tag()}-{i}" for i in range(40)]
        for i, peer in enumerate(peers):
            c = SdkClient(self.a)
            c.ws.send(frame(join_message(stream, peer)) + (frame({"type": "leave"}) if i % 2 else b""))
            if i % 2:
                while c.recv(timeout=EXPECT_TIMEOUT_S)["type"] != "left":
                    pass
            abort(c)
        wait_released(self.a, "edge-a")

        def owner_keys():
            with RedisClient(self.redis.port) as r:
                return [k for k in r.command("KEYS", "mf:{p:xe-*}:own")]

        # The TTL is 60 s: keys gone within 20 s were deleted by the edge.
        wait_until(lambda: owner_keys() == [], EXPECT_TIMEOUT_S, what="every owner key deleted")
        for peer in peers:
            c = SdkClient(self.b)
            self.addCleanup(c.close)
            joined, _ = c.join(stream, "r1", peer, timeout=EXPECT_TIMEOUT_S)
            self.assertEqual(joined["edge"], "edge-b")


if __name__ == "__main__":
    unittest.main()
