"""Slot exhaustion before the upgrade (docs/security.md, "Connection
admission"), reproduced at a bounded scale on both programs: idle TCP
sockets are cut at the first-bytes deadline, a source over its cap is
refused at accept (before any TLS work), full handshakes are rate-limited
per source, and a reserve of slots keeps room for admitted clients while a
bystander from another address (127.0.0.2) is still served. Every
assertion waits for an event (a close, a counter) rather than a delay; the
deadlines and rates are driven by a manual clock (ManualClock), so what must
not have happened yet cannot have happened."""

import json
import socket
import ssl
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, AdminEdge, ManualClock, RawWebSocket, admin_get, edge_config_file, lower_nofile,
                          parse_prometheus)
from ingress_process import Ingress, ProxyBackend, TlsPipe, echo_handler, trust_context, wait_until

BYSTANDER = "127.0.0.2"


def idle_socket(port, source, timeout=30.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return sock


def accept_queue_length(port):
    """Connections in the kernel's accept queue of the listener on
    127.0.0.1:port (a LISTEN socket's rx_queue in /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listener on 127.0.0.1:{port}")


def wait_closed_by_server(sock):
    """Reads until the server closes (EOF or reset); returns what it sent.
    The socket's own timeout bounds the wait (a failure, not a margin)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def wait_refused(socks, count, timeout=10.0):
    """Waits until exactly `count` of `socks` were closed by the server (EOF
    or reset), whichever they are: the sources' counts live on one shard
    and the connections arrive on several, so which of them comes last is
    not the client's connect order. Returns {index: bytes received} of the
    closed ones; the others must still be open."""
    got = {i: b"" for i in range(len(socks))}
    closed = {}
    for sock in socks:
        sock.setblocking(False)

    def poll():
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                chunk = sock.recv(4096)
            except (BlockingIOError, InterruptedError, TimeoutError):
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[i] += chunk
            else:
                closed[i] = got[i]
        return len(closed) >= count
    wait_until(poll, timeout, lambda: f"{count} of {len(socks)} sockets closed by the server (closed: {closed})")
    assert len(closed) == count, closed
    for sock in socks:
        sock.settimeout(30.0)
    return closed


def edge_metric(edge, name, **labels):
    samples, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
    return samples.get((name, frozenset(labels.items())), 0)


def assert_bystander_served(test, edge, tls=False):
    sock = edge.connect(source=BYSTANDER, timeout=10.0)
    ws = RawWebSocket(sock)
    try:
        ws.upgrade(timeout=10.0)
        ws.send_text('{"type":"ping","t":"bystander"}')
        test.assertEqual(json.loads(ws.recv_message(timeout=10.0)), {"type": "pong", "t": "bystander"})
    finally:
        # Closed here: an edge on a manual clock stops at once only without
        # clients (a drain waits for its spread on that clock).
        ws.close()


def edge_config(limits, timeouts=None):
    extra = ""
    if timeouts:
        extra = "[timeouts]\n" + "".join(f"{k} = {v}\n" for k, v in timeouts.items())
    return edge_config_file(limits, extra=extra)


class EdgeBeforeTheUpgrade(unittest.TestCase):
    @needs_test_hooks
    def test_idle_sockets_are_cut_at_the_first_bytes_deadline(self):
        # The defaults: first bytes 3 s, handshake 10 s. The clock stands
        # still until the test moves it.
        config = edge_config({"per_source_connections": 0, "per_source_rate": 0})
        with ManualClock() as clock, AdminEdge(args=["--config", config], shards=2) as edge:
            accepted = edge_metric(edge, "mf_edge_accepted_total")
            idle = [idle_socket(edge.port, "127.0.0.5") for _ in range(20)]
            talker = idle_socket(edge.port, "127.0.0.5")
            talker.sendall(b"G")  # one byte of a request line, then nothing
            try:
                assert_bystander_served(self, edge)
                # Every socket accepted (so stamped) before the clock moves.
                wait_until(lambda: edge_metric(edge, "mf_edge_accepted_total") == accepted + 22, EXPECT_TIMEOUT_S, "22 accepts")
                clock.advance(3000 + 20)  # the timer wheel rounds deadlines up to its 10 ms tick
                for sock in idle:
                    self.assertEqual(wait_closed_by_server(sock), b"")
                self.assertEqual(edge_metric(edge, "mf_edge_first_bytes_timeouts_total"), 20)
                # 3 s after accept the talker is inside its handshake
                # deadline: still open. Past 10 s it is cut by that one.
                self.assertEqual(edge_metric(edge, "mf_edge_handshake_timeouts_total"), 0)
                clock.advance(7000)
                self.assertEqual(wait_closed_by_server(talker), b"")
                self.assertEqual(edge_metric(edge, "mf_edge_handshake_timeouts_total"), 1)
            finally:
                for sock in idle + [talker]:
                    sock.close()
                clock.release()

    def test_a_source_over_its_cap_is_refused_at_accept(self):
        # Idle sockets that never sent a byte hold the source's 5 places; the
        # next ones are answered 429 at once, without a request.
        config = edge_config({"per_source_connections": 5, "per_source_rate": 0},
                             {"first_bytes_ms": 60000, "handshake_ms": 60000})
        with AdminEdge(args=["--config", config], shards=2) as edge:
            held = [idle_socket(edge.port, "127.0.0.5") for _ in range(10)]
            try:
                refused = wait_refused(held, 5)
                for data in refused.values():
                    self.assertTrue(data.startswith(b"HTTP/1.1 429 "), data)
                assert_bystander_served(self, edge)
                self.assertEqual(edge_metric(edge, "mf_edge_rejected_upgrades_total", reason="per_source"), 5)
                # A place given back is usable again (the release reached the
                # owner shard: retried until it has).
                held[next(i for i in range(10) if i not in refused)].close()

                def admitted():
                    sock = idle_socket(edge.port, "127.0.0.5", timeout=10.0)
                    ws = RawWebSocket(sock)
                    try:
                        ws.upgrade(timeout=10.0)
                        return True
                    except (AssertionError, OSError, ValueError):
                        return False
                    finally:
                        ws.close()
                wait_until(admitted, EXPECT_TIMEOUT_S, "a freed per-source place to be reused")
            finally:
                for sock in held:
                    sock.close()

    def test_over_tls_a_refused_source_costs_no_handshake(self):
        config = edge_config({"per_source_connections": 2, "per_source_rate": 0},
                             {"first_bytes_ms": 60000, "handshake_ms": 60000})
        with AdminEdge(args=["--config", config], shards=2, tls=True) as edge:
            before = edge_metric(edge, "mf_edge_tls_handshakes_total")
            # Handshaken, so counted (the count comes first).
            held = [edge.connect(source="127.0.0.6", timeout=10.0) for _ in range(2)]
            try:
                for _ in range(3):
                    with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                        edge.connect(source="127.0.0.6", timeout=10.0).close()
                assert_bystander_served(self, edge)
            finally:
                for sock in held:
                    sock.close()
            # Only the holders' and the bystander's handshakes were done.
            self.assertEqual(edge_metric(edge, "mf_edge_tls_handshakes_total") - before, 3)
            self.assertGreaterEqual(edge_metric(edge, "mf_edge_rejected_upgrades_total", reason="per_source"), 3)

    @needs_test_hooks
    def test_full_handshakes_are_rate_limited_per_source(self):
        config = edge_config({"per_source_connections": 0, "per_source_rate": 2, "per_source_burst": 3})
        with ManualClock() as clock, AdminEdge(args=["--config", config], shards=2, tls=True) as edge:
            before = edge_metric(edge, "mf_edge_tls_handshakes_total")

            def attempt():
                try:
                    edge.connect(source="127.0.0.7", timeout=10.0).close()
                    return "done"
                except (ssl.SSLError, ConnectionError, OSError):
                    return "refused"
            try:
                results = [attempt() for _ in range(8)]
                self.assertEqual(results, ["done"] * 3 + ["refused"] * 5,
                                 "the burst of 3, then nothing: no time passed")
                clock.advance(500)  # 2/s: one token
                self.assertEqual([attempt(), attempt()], ["done", "refused"])
                assert_bystander_served(self, edge)
                # The refused connections cost no handshake.
                self.assertEqual(edge_metric(edge, "mf_edge_tls_handshakes_total") - before, 3 + 1 + 1)
            finally:
                clock.release()  # before the edge stops: its drain runs on this clock

    def test_the_reserve_keeps_room_for_admitted_clients(self):
        # 80 idle sockets against a 64-slot table, no per-source cap and no
        # first-bytes deadline: without the reserve the table fills, accept
        # pauses and the bystander waits for the minute-long handshake
        # deadline. With it (25 %: 16 slots), every accept past 48 closes the
        # oldest idle socket and the bystander is served.
        config = edge_config({"per_source_connections": 0, "per_source_rate": 0, "reserve_percent": 25},
                             {"first_bytes_ms": 0, "handshake_ms": 60000})
        with AdminEdge(args=["--config", config, "--max-connections-per-shard", "64"], shards=1) as edge:
            idle = [idle_socket(edge.port, "127.0.0.8") for _ in range(80)]
            try:
                # Every idle socket taken in, the table at its limit, before
                # the bystander comes; the admin requests that poll this share
                # the table too, and must not be reset by it.
                wait_until(lambda: edge_metric(edge, "mf_edge_accepted_total") >= 80, EXPECT_TIMEOUT_S, "80 accepts")
                assert_bystander_served(self, edge)
                self.assertGreaterEqual(edge_metric(edge, "mf_edge_reserve_evictions_total"), 80 - 64)
                # The oldest were the ones closed.
                self.assertEqual(wait_closed_by_server(idle[0]), b"")
            finally:
                for sock in idle:
                    sock.close()


class IngressBeforeTheHandshake(unittest.TestCase):
    def ingress_metric(self, ingress, name, **labels):
        return ingress.metrics().get((name, frozenset(labels.items())), 0)

    def assert_bystander_tunnel(self, ingress, backend):
        client = TlsPipe(ingress, source=BYSTANDER, timeout=10.0)
        try:
            client.send(b"hello\n")
            self.assertEqual(client.read_until(b"hello\n"), b"hello\n")
        finally:
            client.close()

    @needs_test_hooks
    def test_idle_sockets_are_cut_at_the_first_bytes_deadline(self):
        # The defaults: first bytes 3 s, handshake 5 s; a manual clock.
        with ManualClock() as clock, ProxyBackend(echo_handler) as backend, \
                Ingress(backends=[backend.address], wait_for="tls") as ingress:
            # Health checks run on the same clock: move it until one passed.
            def backend_up():
                clock.advance(250)
                return ingress.backend_states()[backend.address]["state"] == "up"
            wait_until(backend_up, EXPECT_TIMEOUT_S, "the backend to be up")
            accepted = self.ingress_metric(ingress, "mf_ingress_accepted_total")
            idle = [idle_socket(ingress.port, "127.0.0.5") for _ in range(20)]
            talker = idle_socket(ingress.port, "127.0.0.5")
            talker.sendall(b"\x16")  # one byte of a TLS record header
            try:
                self.assert_bystander_tunnel(ingress, backend)
                # Every socket accepted (so stamped) before the clock moves.
                wait_until(lambda: self.ingress_metric(ingress, "mf_ingress_accepted_total") == accepted + 22, EXPECT_TIMEOUT_S,
                           "22 accepts")
                clock.advance(3000 + 20)  # the timer wheel rounds deadlines up to its 10 ms tick
                for sock in idle:
                    self.assertEqual(wait_closed_by_server(sock), b"")
                self.assertEqual(
                    self.ingress_metric(ingress, "mf_ingress_tls_failures_total", reason="first_bytes_timeout"), 20)
                self.assertEqual(
                    self.ingress_metric(ingress, "mf_ingress_tls_failures_total", reason="handshake_timeout"), 0)
                clock.advance(2000)
                self.assertEqual(wait_closed_by_server(talker), b"")
                self.assertEqual(
                    self.ingress_metric(ingress, "mf_ingress_tls_failures_total", reason="handshake_timeout"), 1)
            finally:
                for sock in idle + [talker]:
                    sock.close()
                clock.release()

    def test_a_source_over_its_cap_is_refused_at_accept(self):
        settings = {"tls": {"first_bytes_timeout_ms": 60000, "handshake_timeout_ms": 60000},
                    "limits": {"per_source_connections": 5, "per_source_rate": 50, "per_source_burst": 100}}
        with ProxyBackend(echo_handler) as backend, Ingress(backends=[backend.address], settings=settings) as ingress:
            held = [idle_socket(ingress.port, "127.0.0.5") for _ in range(8)]
            try:
                refused = wait_refused(held, 3)
                self.assertEqual(set(refused.values()), {b""}, "refused before the handshake: not a byte")
                self.assert_bystander_tunnel(ingress, backend)
                self.assertEqual(
                    self.ingress_metric(ingress, "mf_ingress_rejects_total", reason="per_source_connections"), 3)
            finally:
                for sock in held:
                    sock.close()

    def test_a_full_table_refuses_a_tunnel_without_blaming_the_backend(self):
        # RLIMIT_NOFILE 64, one shard, no reserve and no per-source cap: idle
        # sockets fill the table after one client was accepted. Its tunnel
        # then finds no index for the backend connection: the client is
        # refused (no_descriptor), and the healthy backend is neither ejected
        # nor failed by a health check that had no socket either.
        settings = {"tls": {"first_bytes_timeout_ms": 0, "handshake_timeout_ms": 60000},
                    "limits": {"reserve_percent": 0, "per_source_connections": 0, "per_source_rate": 0}}
        with ProxyBackend(echo_handler) as backend, \
                Ingress(backends=[backend.address], settings=settings, shards=1,
                        preexec_fn=lower_nofile(64)) as ingress:
            self.assertRegex(ingress.stderr_text(), r"\(64 connections per shard\)")
            ingress.wait_backend_state(backend.address, "up")
            client = socket.create_connection((ingress.host, ingress.port), timeout=EXPECT_TIMEOUT_S)
            idle = [idle_socket(ingress.port, "127.0.0.8") for _ in range(100)]
            try:
                # The accept queue keeps exactly those that did not fit: the
                # table holds 62 of these 101 sockets (the client first, it
                # came first) and the admin listener's two armed accepts
                # (Reactor::accepts_per_admin_listener), and nothing else.
                fit = 64 - 2
                wait_until(lambda: accept_queue_length(ingress.port) == 101 - fit, EXPECT_TIMEOUT_S,
                           lambda: f"{101 - fit} connections waiting, not {accept_queue_length(ingress.port)}")
                tls = trust_context().wrap_socket(client, server_hostname="localhost")
                try:
                    tls.sendall(b"hello\n")
                    self.assertEqual(tls.recv(64), b"", "refused: close_notify, no tunnel")
                except (ssl.SSLError, ConnectionError):
                    pass  # refused all the same
                finally:
                    tls.close()
            finally:
                for sock in idle:
                    sock.close()
            self.assertEqual(self.ingress_metric(ingress, "mf_ingress_rejects_total", reason="no_descriptor"), 1)
            self.assertEqual(self.ingress_metric(ingress, "mf_ingress_connect_failures_total"), 0)
            self.assertEqual(ingress.backend_states()[backend.address]["state"], "up")
            self.assert_bystander_tunnel(ingress, backend)

    def test_the_reserve_keeps_room_for_admitted_tunnels(self):
        # RLIMIT_NOFILE 128 and one shard: a table of 128 slots (clients,
        # backend sockets and health probes alike). 160 idle sockets with no
        # per-source cap and no first-bytes deadline would fill it; with a
        # 25 % reserve every accept past 96 closes the oldest of them and
        # the bystander's tunnel still opens.
        settings = {"tls": {"first_bytes_timeout_ms": 0, "handshake_timeout_ms": 60000},
                    "limits": {"reserve_percent": 25}}
        with ProxyBackend(echo_handler) as backend, \
                Ingress(backends=[backend.address], settings=settings, shards=1,
                        preexec_fn=lower_nofile(128)) as ingress:
            self.assertRegex(ingress.stderr_text(), r"\(128 connections per shard\)")
            idle = [idle_socket(ingress.port, "127.0.0.8") for _ in range(160)]
            try:
                self.assert_bystander_tunnel(ingress, backend)
                self.assertGreaterEqual(self.ingress_metric(ingress, "mf_ingress_reserve_evictions_total"),
                                        160 - 128)
                self.assertEqual(wait_closed_by_server(idle[0]), b"", "the oldest idle socket was the one closed")
            finally:
                for sock in idle:
                    sock.close()


if __name__ == "__main__":
    unittest.main()
