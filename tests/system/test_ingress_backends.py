"""Two edges behind one ingress: balancing (least-connections, stream
affinity), the drain/enable admin API, an edge killed and restarted, and
the metrics that describe all that."""

import json
import re
import unittest

from edge_process import EXPECT_TIMEOUT_S, RawWebSocket, SdkClient, admin_get, free_port, wait_until
from ingress_process import (ADMIN_TOKEN, BackendEdge, Ingress, ProxyBackend, class_fixture, echo_handler,
                             ingress_with_edges)

EDGE_ARGS = ["--messages-per-second", "1000", "--message-burst", "1000"]


def join_edge(ingress, stream, peer, test, path=None):
    """A joined SdkClient through the ingress (closed at test cleanup) and the
    `edge` field of its `joined`."""
    client = SdkClient(ingress, path=path or f"/ws?stream={stream}")
    test.addCleanup(client.close)
    joined, _ = client.join(stream, "r1", peer)
    return client, joined["edge"]


def assert_pong(test, client, t=1):
    client.send({"type": "ping", "t": t})
    test.assertEqual(client.expect("pong"), {"type": "pong", "t": t})


class Balancing(unittest.TestCase):
    CLIENTS = 20

    def spread(self, ingress, tag):
        """40 clients, A and B interleaved: {stream: [edge of each client]}."""
        edges = {"A": [], "B": []}
        clients = []
        for i in range(self.CLIENTS):
            for stream in ("A", "B"):
                client, edge = join_edge(ingress, f"{tag}-{stream}", f"p-{stream}-{i}", self)
                clients.append(client)
                edges[stream].append(edge)
        return edges, clients

    def test_stream_affinity_keeps_each_stream_on_one_edge(self):
        with ingress_with_edges(edge_args=EDGE_ARGS,
                                settings={"balance": {"mode": "stream-affinity",
                                                      "affinity_load_factor_percent": 1000}}) as (ingress, edges):
            by_stream, clients = self.spread(ingress, "aff")
            for stream, landed in by_stream.items():
                self.assertEqual(len(set(landed)), 1, f"stream {stream} spread over {set(landed)}")
            # Each client of a stream sees the others: one swarm on one edge.
            last = clients[-1]
            self.assertEqual(len(last.need_peers()["peers"]), 8, "maxPeers of the default policy")
            states = ingress.backend_states()
            self.assertEqual(sum(b["active"] for b in states.values()), 2 * self.CLIENTS)
            for client in clients:
                client.close()

    def test_least_connections_spreads_the_same_clients(self):
        with ingress_with_edges(edge_args=EDGE_ARGS) as (ingress, edges):
            by_stream, clients = self.spread(ingress, "lc")
            landed = by_stream["A"] + by_stream["B"]
            counts = {edge.edge_id: landed.count(edge.edge_id) for edge in edges}
            self.assertEqual(sum(counts.values()), 2 * self.CLIENTS)
            # Least connections is counted per shard (backend_pool.h: "local
            # active"): each shard balances its own tunnels, so the totals
            # differ by at most one per shard.
            self.assertLessEqual(abs(counts["edge-a"] - counts["edge-b"]), ingress.shards, counts)
            # The edges agree with what the clients saw.
            self.assertEqual({e.edge_id: e.connections() for e in edges}, counts)
            states = ingress.backend_states()
            self.assertEqual({states[e.address]["active"] for e in edges}, set(counts.values()) or {0})
            for client in clients:
                client.close()


class DrainApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ingress, cls.edges = class_fixture(cls, ingress_with_edges(edge_args=EDGE_ARGS))

    def test_drain_then_enable(self):
        a, b = self.edges
        ingress = self.ingress
        # Clients on both edges (4: least connections is per shard, and two
        # shards may each pick edge-a for their first client).
        first = [join_edge(ingress, "drain", f"p-{i}", self) for i in range(4)]
        self.assertEqual({edge for _, edge in first}, {"edge-a", "edge-b"})
        on_a_count = sum(1 for _, edge in first if edge == "edge-a")
        on_a = next(client for client, edge in first if edge == "edge-a")

        response = ingress.admin("POST", f"/api/backends/drain?address={a.address}")
        self.assertEqual(response.status, 200, response)
        state = ingress.backend_states()[a.address]
        self.assertTrue(state["drained"], state)
        self.assertEqual(ingress.metric("mf_ingress_backend_drained", backend=a.address), 1)
        landed = [join_edge(ingress, "drain", f"p-new-{i}", self)[1] for i in range(6)]
        self.assertEqual(landed, ["edge-b"] * 6, "new tunnels avoid the drained edge")
        # The existing tunnel to the drained edge stays open and works.
        assert_pong(self, on_a, 11)
        self.assertEqual(ingress.backend_states()[a.address]["active"], on_a_count)

        response = ingress.admin("POST", f"/api/backends/enable?address={a.address}")
        self.assertEqual(response.status, 200, response)
        self.assertFalse(ingress.backend_states()[a.address]["drained"])
        landed = [join_edge(ingress, "drain", f"p-back-{i}", self)[1] for i in range(8)]
        # Least connections is counted per shard: the enabled edge (1 to 3
        # tunnels against 7 to 9) gets at least its share, whichever shards
        # the clients reach.
        self.assertGreaterEqual(landed.count("edge-a"), 4, f"the enabled edge gets traffic again: {landed}")
        assert_pong(self, on_a, 12)

    def test_unknown_backend_is_404(self):
        for action in ("drain", "enable"):
            response = self.ingress.admin("POST", f"/api/backends/{action}?address=127.0.0.1:1")
            self.assertEqual(response.status, 404, response)
        self.assertTrue(all(not b["drained"] for b in self.ingress.backend_states().values()))


class AdminSurface(unittest.TestCase):
    """docs/security.md, "The admin surface": drain and enable need the
    bearer token, no request from a web page (Origin) is served, and a Host
    that does not name the listener (DNS rebinding) is refused."""

    @classmethod
    def setUpClass(cls):
        cls.backend = ProxyBackend(echo_handler).__enter__()
        cls.addClassCleanup(cls.backend.__exit__, None, None, None)
        cls.ingress = Ingress(backends=[cls.backend.address]).start()
        cls.addClassCleanup(cls.ingress.__exit__, None, None, None)

    def drained(self):
        return self.ingress.backend_states()[self.backend.address]["drained"]

    def drain(self, **kwargs):
        return self.ingress.admin("POST", f"/api/backends/drain?address={self.backend.address}", **kwargs)

    def test_cross_site_simple_post_is_refused_and_drains_nothing(self):
        # What any page an operator's browser opens can send without a
        # preflight: a text/plain POST, with the page's Origin and no token.
        response = self.drain(token=None, headers=["Origin: https://evil.example", "Content-Type: text/plain"],
                              body=b"x")
        self.assertEqual(response.status, 403, response)
        self.assertFalse(self.drained())
        # Even a request that somehow holds the token is refused from a page
        # other than the listener's own (here: another port of localhost).
        response = self.drain(headers=["Origin: http://localhost:1"])
        self.assertEqual(response.status, 403, response)
        self.assertFalse(self.drained())

    def test_the_listeners_own_page_may_drain_with_the_token(self):
        # The ingress's operator page (served by the listener itself) sends
        # Origin http://<Host>: accepted, still only with the token.
        response = self.drain(token=None, headers=["Origin: http://localhost"])
        self.assertEqual(response.status, 401, response)
        self.assertFalse(self.drained())
        response = self.drain(headers=["Origin: http://localhost"])
        self.assertEqual(response.status, 200, response)
        self.assertTrue(self.drained())
        response = self.ingress.admin("POST", f"/api/backends/enable?address={self.backend.address}",
                                      headers=["Origin: http://localhost"])
        self.assertEqual(response.status, 200, response)
        self.assertFalse(self.drained())

    def test_state_changes_need_the_token(self):
        response = self.drain(token=None)
        self.assertEqual(response.status, 401, response)
        self.assertIsNotNone(response.header("WWW-Authenticate"))
        self.assertFalse(self.drained())
        response = self.drain(token=ADMIN_TOKEN + "x")
        self.assertEqual(response.status, 401, response)
        self.assertFalse(self.drained())
        self.assertEqual(self.drain().status, 200)
        self.assertTrue(self.drained())
        response = self.ingress.admin("POST", f"/api/backends/enable?address={self.backend.address}")
        self.assertEqual(response.status, 200, response)
        self.assertFalse(self.drained())
        self.assertGreaterEqual(self.ingress.metric("mf_ingress_admin_refusals_total"), 2)

    def test_operator_page_is_self_contained_html(self):
        response = self.ingress.admin("GET", "/", token=None)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.header("Content-Type"), "text/html; charset=utf-8")
        page = response.body.decode()
        for path in ("'/api/backends'", "'/metrics'", "'/api/backends/'"):
            self.assertIn(path, page)
        # Nothing fetched from elsewhere: no absolute URL, no external script or style.
        self.assertIsNone(re.search(r"(src|href)\s*=|https?://|//[a-z]", page, re.I), "external reference")
        # Another page's Origin gets nothing, not even the page.
        response = self.ingress.admin("GET", "/", token=None, headers=["Origin: https://evil.example"])
        self.assertEqual(response.status, 403, response)

    def test_a_rebound_host_is_refused(self):
        # DNS rebinding: the page's own name now resolves to 127.0.0.1; the
        # browser sends that name as Host (and, for a same-origin GET, no
        # Origin).
        response = self.drain(headers=["Host: rebound.evil.example:" + str(self.ingress.admin_port)])
        self.assertEqual(response.status, 421, response)
        self.assertFalse(self.drained())
        response = self.ingress.admin("GET", "/api/backends", headers=["Host: rebound.evil.example"])
        self.assertEqual(response.status, 421, response)
        response = self.ingress.admin("GET", "/metrics", headers=[f"Host: 127.0.0.1:{self.ingress.admin_port}"])
        self.assertEqual(response.status, 200, response)


class AdminWithoutToken(unittest.TestCase):
    def test_without_a_token_file_drain_is_refused(self):
        with ProxyBackend(echo_handler) as backend, \
                Ingress(backends=[backend.address], settings={"admin": {"token_file": ""}}) as ingress:
            response = ingress.admin("POST", f"/api/backends/drain?address={backend.address}")
            self.assertEqual(response.status, 403, response)
            self.assertFalse(ingress.backend_states()[backend.address]["drained"])


class KilledEdge(unittest.TestCase):
    def test_killed_edge_gets_no_tunnels_and_returns(self):
        with ingress_with_edges(edge_args=EDGE_ARGS) as (ingress, edges):
            a, b = edges
            clients = [join_edge(ingress, "kill", f"p-{i}", self) for i in range(6)]
            self.assertEqual({e for _, e in clients}, {"edge-a", "edge-b"})

            a.process.kill()
            a.process.wait(5)
            a.expect_clean_exit = False
            # The tunnels to the dead edge end.
            for client, edge in clients:
                if edge == "edge-a":
                    closed, _ = client.ws.wait_eof()
                    self.assertTrue(closed, "a tunnel to the killed edge stayed open")
            # Reconnecting clients all land on edge-b, none refused, whether
            # the health check or a failed connect noticed first.
            again = [join_edge(ingress, "kill", f"p-re-{i}", self) for i in range(8)]
            self.assertEqual([edge for _, edge in again], ["edge-b"] * 8)
            ingress.wait_backend_state(a.address, "down")
            self.assertEqual(ingress.metric("mf_ingress_backend_up", backend=a.address), 0)
            self.assertEqual(ingress.metric("mf_ingress_backend_up", backend=b.address), 1)
            self.assertEqual(ingress.metric("mf_ingress_rejects_total", reason="no_backend"), 0)
            self.assertEqual(admin_get(ingress.admin_port, "/healthz").status, 200, "one backend is still up")

            # The edge comes back on the same plain port.
            with BackendEdge("edge-a2", args=EDGE_ARGS, plain_port=a.plain_port) as a2:
                ingress.wait_backend_state(a2.address, "up")
                # Shard 0 runs the checks and tells the other shards: wait
                # until every shard routes to a2 again.
                shards = ingress.metric("mf_ingress_shards")
                self.assertEqual(shards, 2)
                wait_until(lambda: ingress.backend_states()[a2.address]["up_shards"] == shards, EXPECT_TIMEOUT_S,
                           lambda: f"every shard routes to the returning edge: {ingress.backend_states()}")
                # Each shard picks the least loaded of its own tunnels, and
                # edge-b holds every tunnel so far: whichever shards the
                # kernel hands these 8 connections to, a shard given m of
                # them sends at least m // 2 to a2 (all of them while its
                # own count on b is higher), so at least 3 of 8 in all.
                back = [join_edge(ingress, "kill", f"p-back-{i}", self) for i in range(8)]
                landed = [edge for _, edge in back]
                self.assertGreaterEqual(landed.count("edge-a2"), 3, f"the returning edge gets traffic: {landed}")
                for client, _ in clients + again + back:
                    client.close()

    def test_all_backends_down(self):
        with ingress_with_edges(count=1, edge_args=EDGE_ARGS) as (ingress, (edge,)):
            edge.process.kill()
            edge.process.wait(5)
            edge.expect_clean_exit = False
            ingress.wait_backend_state(edge.address, "down")
            self.assertEqual(admin_get(ingress.admin_port, "/healthz").status, 503)
            before = ingress.metric("mf_ingress_rejects_total", reason="no_backend")
            sock = ingress.connect()
            self.addCleanup(sock.close)
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")
            sock.settimeout(3)
            try:
                data = sock.recv(100)
            except (ConnectionError, OSError):
                data = b""
            self.assertEqual(data, b"", "no backend: the client is closed")
            ingress.wait_metric("mf_ingress_rejects_total", lambda v: v == before + 1, reason="no_backend")

    def test_no_backend_reachable_at_start(self):
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        with Ingress(backends=[dead], wait_for="tls") as ingress:
            ingress.wait_backend_state(dead, "down")
            self.assertEqual(admin_get(ingress.admin_port, "/healthz").status, 503)
            self.assertEqual(ingress.metric("mf_ingress_backend_up", backend=dead), 0)
            with self.assertRaises((ConnectionError, AssertionError, OSError, TimeoutError)):
                RawWebSocket.connect(ingress).close()
            ingress.wait_metric("mf_ingress_rejects_total", lambda v: v >= 1, reason="no_backend")
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active"), 0)


class IngressMetrics(unittest.TestCase):
    def test_tunnels_bytes_rejects_and_backend_up(self):
        with ingress_with_edges(count=1, edge_args=EDGE_ARGS,
                                settings={"limits": {"per_source_connections": 5}}) as (ingress, (edge,)):
            samples = ingress.metrics()
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active", samples), 0)
            self.assertEqual(ingress.metric("mf_ingress_backend_up", samples, backend=edge.address), 1)
            self.assertEqual(ingress.metric("mf_ingress_shards", samples), 2)
            bytes_before = {d: ingress.metric("mf_ingress_bytes_total", samples, direction=d)
                            for d in ("client_to_backend", "backend_to_client")}
            clients = [join_edge(ingress, "metrics", f"p-{i}", self)[0] for i in range(5)]
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active"), 5)
            self.assertEqual(ingress.metric("mf_ingress_backend_active", backend=edge.address), 5)
            for i, client in enumerate(clients):
                assert_pong(self, client, i)
            samples = ingress.metrics()
            for direction, before in bytes_before.items():
                self.assertGreater(ingress.metric("mf_ingress_bytes_total", samples, direction=direction),
                                   before + 5 * 100, direction)
            self.assertGreaterEqual(ingress.metric("mf_ingress_tunnels_total", samples), 5)
            # A sixth client from 127.0.0.1 is over the per-source cap.
            with self.assertRaises((ConnectionError, AssertionError, OSError, TimeoutError)):
                extra = RawWebSocket.connect(ingress)
                extra.close()
            ingress.wait_metric("mf_ingress_rejects_total", lambda v: v == 1, reason="per_source_connections")
            self.assertEqual(ingress.metric("mf_ingress_rejects_total", reason="max_connections"), 0)
            for client in clients[:2]:
                client.close()
            ingress.wait_metric("mf_ingress_tunnels_active", lambda v: v == 3)
            for client in clients[2:]:
                client.close()
            ingress.wait_metric("mf_ingress_tunnels_active", lambda v: v == 0)
            self.assertEqual(ingress.metric("mf_ingress_backend_active", backend=edge.address), 0)
            samples = ingress.metrics()
            self.assertEqual(ingress.metric("mf_ingress_tls_handshakes_total", samples, kind="full")
                             + ingress.metric("mf_ingress_tls_handshakes_total", samples, kind="resumed"), 5)

    def test_backends_json_shape(self):
        with ingress_with_edges(count=1, edge_args=EDGE_ARGS) as (ingress, (edge,)):
            response = ingress.admin("GET", "/api/backends")
            self.assertEqual(response.status, 200)
            body = json.loads(response.body)
            (entry,) = body["backends"]
            for key, value in {"address": edge.address, "state": "up", "drained": False, "weight": 1,
                               "active": 0, "connect_failures": 0}.items():
                self.assertEqual(entry[key], value, entry)
            self.assertIn("total", entry)


if __name__ == "__main__":
    unittest.main()
