"""The plain listener behind the ingress (docs/protocol.md section 8: "The source address
is the one from a PROXY protocol v2 header when the listener is configured to
expect one") and per-source admission on both listeners."""

import json
import socket
import struct
import unittest

from edge_process import EXPECT_TIMEOUT_S, Edge, RawWebSocket, free_port, http_exchange, upgrade_request

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(source_ip, source_port, dest_ip="127.0.0.1", dest_port=8445, tlvs=b""):
    addresses = socket.inet_aton(source_ip) + socket.inet_aton(dest_ip) + struct.pack("!HH", source_port, dest_port)
    body = addresses + tlvs
    return SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def proxy_v2_local():
    return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)


class PlainListenerEdge(Edge):
    """An edge with the public listener plus a plain PROXY v2 listener."""

    def __init__(self, extra=(), **kwargs):
        self.plain_port = free_port()
        super().__init__(args=["--plain-listen", f"127.0.0.1:{self.plain_port}", "--proxy-protocol", *extra], **kwargs)

    def plain_socket(self, timeout=EXPECT_TIMEOUT_S, source=None):
        sock = socket.create_connection((self.host, self.plain_port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def upgrade_status(sock, prefix=b"", timeout=EXPECT_TIMEOUT_S):
    request, _ = upgrade_request()
    sock.sendall(prefix + request)
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


class ProxyProtocol(unittest.TestCase):
    def test_websocket_through_a_proxy_header(self):
        with PlainListenerEdge() as edge:
            sock = edge.plain_socket()
            self.addCleanup(sock.close)
            ws = RawWebSocket(sock)
            sock.sendall(proxy_v2_header("203.0.113.7", 40000))
            ws.upgrade()
            ws.send_text(json.dumps({"type": "ping", "t": 1}))
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 1})

    def test_header_and_request_in_one_write_and_split_bytewise(self):
        with PlainListenerEdge() as edge:
            for split in (False, True):
                sock = edge.plain_socket()
                self.addCleanup(sock.close)
                header = proxy_v2_header("198.51.100.1", 1234, tlvs=b"\x02\x00\x09localhost")
                request, _ = upgrade_request()
                if split:
                    for b in header:
                        sock.sendall(bytes([b]))
                    sock.sendall(request)
                else:
                    sock.sendall(header + request)
                sock.settimeout(3)
                head = sock.recv(4096)
                self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)

    def test_local_command_is_accepted(self):
        # LOCAL: the proxy's own health check, no client address.
        with PlainListenerEdge() as edge:
            sock = edge.plain_socket()
            self.addCleanup(sock.close)
            sock.sendall(proxy_v2_local() + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(3)
            self.assertTrue(sock.recv(4096).startswith(b"HTTP/1.1 200 "))

    def test_missing_or_garbled_header_is_closed_without_answer(self):
        with PlainListenerEdge() as edge:
            for prefix in (b"", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", SIGNATURE + b"\x21\x31\x00\x00"):
                sock = edge.plain_socket()
                self.addCleanup(sock.close)
                request, _ = upgrade_request()
                sock.sendall(prefix + request)
                sock.settimeout(3)
                self.assertEqual(sock.recv(4096), b"", prefix)
            # The public listener does not expect a header and still serves.
            ws = RawWebSocket.connect(edge)
            self.addCleanup(ws.close)
            ws.send_text(json.dumps({"type": "ping", "t": 2}))
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 2})

    def test_per_source_cap_uses_the_proxied_address(self):
        with PlainListenerEdge(extra=["--per-source-connections", "2", "--per-source-rate", "0"], shards=2) as edge:
            held = []
            statuses = []
            for ip in ["10.1.0.1", "10.1.0.1", "10.1.0.1", "10.1.0.2"]:
                sock = edge.plain_socket()
                held.append(sock)
                self.addCleanup(sock.close)
                statuses.append(upgrade_status(sock, proxy_v2_header(ip, 5555)))
            self.assertEqual([s.split(" ")[1] for s in statuses], ["101", "101", "429", "101"], statuses)
            # Closing one frees its place for the same address.
            held[0].close()
            for _ in range(50):
                sock = edge.plain_socket()
                self.addCleanup(sock.close)
                status = upgrade_status(sock, proxy_v2_header("10.1.0.1", 5556))
                if status.split(" ")[1] == "101":
                    break
                sock.close()
                import time
                time.sleep(0.05)
            self.assertEqual(status.split(" ")[1], "101", status)


    def test_local_header_counts_under_the_tcp_peer(self):
        # A LOCAL (or UNSPEC) header names no client: such a connection must
        # not escape the per-source cap; it counts under its TCP peer.
        with PlainListenerEdge(extra=["--per-source-connections", "2", "--per-source-rate", "0"], shards=2) as edge:
            statuses = []
            for _ in range(3):
                sock = edge.plain_socket(source="127.0.0.4")
                self.addCleanup(sock.close)
                statuses.append(upgrade_status(sock, proxy_v2_local()).split(" ")[1])
            self.assertEqual(statuses, ["101", "101", "429"], statuses)
            # A proxied client of that same TCP peer is its own source.
            sock = edge.plain_socket(source="127.0.0.4")
            self.addCleanup(sock.close)
            self.assertEqual(upgrade_status(sock, proxy_v2_header("10.9.0.1", 5555)).split(" ")[1], "101")


class PerSourceDirect(unittest.TestCase):
    def test_connection_cap_on_the_public_listener(self):
        with Edge(args=["--per-source-connections", "3", "--per-source-rate", "0"], shards=2) as edge:
            held = []
            statuses = []
            for _ in range(5):
                sock = edge.connect()
                held.append(sock)
                self.addCleanup(sock.close)
                statuses.append(upgrade_status(sock).split(" ")[1])
            self.assertEqual(statuses, ["101", "101", "101", "429", "429"])
            response = http_exchange(edge, upgrade_request()[0])
            self.assertEqual(response.status, 429)
            self.assertIsNotNone(response.header("Retry-After"))

    def test_new_connection_rate(self):
        with Edge(args=["--per-source-connections", "0", "--per-source-rate", "1",
                        "--config", self.rate_config()], shards=1) as edge:
            statuses = []
            # From an address of its own: the harness's start-up probes
            # (counted at accept like any connection) used 127.0.0.1's tokens.
            for _ in range(4):
                sock = edge.connect(source="127.0.0.3")
                self.addCleanup(sock.close)
                statuses.append(upgrade_status(sock).split(" ")[1])
            # Burst 2 from the config file, then over the rate of 1/s.
            self.assertEqual(statuses[:2], ["101", "101"])
            self.assertIn("429", statuses[2:])

    def rate_config(self):
        import tempfile
        import os
        fd, path = tempfile.mkstemp(suffix=".toml")
        with os.fdopen(fd, "w") as f:
            f.write("[limits]\nper_source_burst = 2\n")
        self.addCleanup(os.unlink, path)
        return path


if __name__ == "__main__":
    unittest.main()
