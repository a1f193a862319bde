"""Plain HTTP on the WebSocket port (docs/protocol.md sections 1 and 8), raw sockets."""

import json
import socket
import time
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, AdminEdge, Edge, ManualClock, RawWebSocket, assert_cut_at_deadline,
                          http_exchange, read_until_eof, upgrade_request, wait_metric_at_least, class_fixture)

MAX_HEAD = 8192


def head_of_size(size, path="/healthz"):
    """A GET request head of exactly `size` bytes (terminator included)."""
    base = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Pad: \r\n\r\n"
    pad = size - len(base)
    assert pad >= 0
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Pad: {'p' * pad}\r\n\r\n".encode()


class HttpCases:
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, Edge(tls=cls.TLS, shards=2))

    def request(self, data, **kwargs):
        if isinstance(data, str):
            data = data.encode()
        response = http_exchange(self.edge, data, **kwargs)
        self.assertTrue(response.closed, f"the edge did not close the connection after {response!r}")
        return response

    def upgrade_lines(self, **changes):
        headers = {"Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
        method = changes.pop("method", "GET")
        path = changes.pop("path", "/ws")
        for name, value in changes.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"

    def assert_status(self, data, status, what=None):
        response = self.request(data)
        self.assertEqual(response.status, status, f"{what or data!r}: {response!r}")
        return response

    def test_healthz(self):
        response = self.assert_status("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200)
        self.assertEqual(response.body, b"ok")
        self.assertEqual(response.header("content-length"), "2")

    def test_healthz_http10(self):
        response = self.assert_status("GET /healthz HTTP/1.0\r\n\r\n", 200)
        self.assertEqual(response.body, b"ok")

    def test_head_healthz(self):
        response = self.assert_status("HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200)
        self.assertEqual(response.body, b"", "HEAD must not carry a body")

    def test_unknown_paths_404(self):
        for path in ("/nope", "/", "/ws/", "/wsx", "/healthz/x", "/WS"):
            with self.subTest(path=path):
                self.assert_status(self.upgrade_lines(path=path), 404)
        # Path before method (docs/protocol.md section 8 order).
        self.assert_status(self.upgrade_lines(path="/nope", method="POST"), 404)

    def test_post_ws_405(self):
        for method in ("POST", "PUT", "HEAD", "DELETE"):
            with self.subTest(method=method):
                response = self.assert_status(self.upgrade_lines(method=method), 405)
                self.assertIn("GET", response.header("allow") or "", "405 must carry Allow")
        response = self.assert_status("POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", 405)

    def test_get_ws_without_upgrade_426(self):
        response = self.assert_status("GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n", 426)
        self.assertEqual((response.header("upgrade") or "").lower(), "websocket")
        self.assert_status(self.upgrade_lines(Upgrade="h2c"), 426)

    def test_bad_websocket_version_426(self):
        for version in ("8", "12", "14", "13, 8", ""):
            with self.subTest(version=version):
                response = self.assert_status(self.upgrade_lines(Sec_WebSocket_Version=version), 426)
                self.assertEqual(response.header("sec-websocket-version"), "13")
        self.assert_status(self.upgrade_lines(Sec_WebSocket_Version=None), 426)

    def test_missing_or_bad_key_400(self):
        self.assert_status(self.upgrade_lines(Sec_WebSocket_Key=None), 400)
        for key in ("short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==x", "dGhlIHNhbXBsZSBub25j!Q=="):
            with self.subTest(key=key):
                self.assert_status(self.upgrade_lines(Sec_WebSocket_Key=key), 400)

    def test_missing_connection_upgrade(self):
        response = self.request(self.upgrade_lines(Connection=None))
        self.assertIn(response.status, (400, 426))
        response = self.request(self.upgrade_lines(Connection="keep-alive"))
        self.assertIn(response.status, (400, 426))

    def test_only_other_subprotocols_400(self):
        self.assert_status(self.upgrade_lines(Sec_WebSocket_Protocol="chat"), 400)
        self.assert_status(self.upgrade_lines(Sec_WebSocket_Protocol="chat, meshedflow.v2"), 400)

    def test_subprotocol_among_others_selected(self):
        ws = RawWebSocket.connect(self.edge, subprotocols=("chat", "meshedflow.v1", "x"))
        try:
            self.assertEqual(ws.response_header("Sec-WebSocket-Protocol"), "meshedflow.v1")
        finally:
            ws.close()

    def test_query_string_allowed_and_not_required(self):
        for path in ("/ws?stream=abc", "/ws"):
            ws = RawWebSocket.connect(self.edge, path=path)
            try:
                ws.send_text('{"type":"ping","t":"q"}')
                self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "q"})
            finally:
                ws.close()

    def test_request_head_over_8_kib_431(self):
        self.assert_status(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Big: " + "b" * 9000 + "\r\n\r\n", 431, "9000-byte header")
        # Never terminated: 431 as soon as the limit is passed.
        self.assert_status("GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Big: " + "b" * 20000, 431, "20 KB unterminated")

    def test_request_head_size_boundary(self):
        exact = head_of_size(MAX_HEAD)
        over = head_of_size(MAX_HEAD + 1)
        self.assertEqual(len(exact), MAX_HEAD)
        response = self.assert_status(exact, 200, "head of exactly 8192 bytes")
        self.assertEqual(response.body, b"ok")
        self.assert_status(over, 431, "head of 8193 bytes")
        # The same, arriving in pieces (the edge buffers a partial head).
        for data, status in ((exact, 200), (over, 431)):
            with self.subTest(size=len(data), pieces=True):
                pieces = [data[i:i + 1000] for i in range(0, len(data), 1000)]
                response = http_exchange(self.edge, data, chunks=pieces)
                self.assertEqual(response.status, status, repr(response))
                self.assertTrue(response.closed)

    def test_garbage_request_line_400(self):
        for garbage in (b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"GET /healthz\r\n\r\n", b"GET /healthz HTTP/1.1 x\r\n\r\n",
                        b"\x00\x01\x02\x03\r\n\r\n", b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", b"GET /healthz HTTP/1.1\nHost: x\n\n\r\n\r\n"):
            with self.subTest(garbage=garbage):
                self.assert_status(garbage, 400)

    def test_every_response_closes(self):
        for data in ("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
                     "GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"):
            response = self.request(data)
            self.assertEqual(response.raw.count(b"HTTP/1.1 "), 1, f"one response, then close: {response!r}")
            self.assertEqual((response.header("connection") or "").lower(), "close")


class HttpPlain(HttpCases, unittest.TestCase):
    TLS = False


class HttpTls(HttpCases, unittest.TestCase):
    TLS = True


@needs_test_hooks
class HttpHandshakeTimeout(unittest.TestCase):
    def test_partial_head_closed_at_deadline_and_websocket_not_affected(self):
        # On the manual clock: the deadline passes when the test moves the
        # clock, however slowly this machine runs.
        with ManualClock() as clock, AdminEdge(args=["--handshake-timeout-ms", "500"]) as edge:
            for first in (b"", b"GET /ws HTTP/1.1\r\nHost: localhost\r\n"):
                with self.subTest(sent=first):
                    accepted = edge.metric("mf_edge_accepted_total")
                    sock = socket.create_connection((edge.host, edge.port), timeout=EXPECT_TIMEOUT_S)
                    try:
                        sock.sendall(first)
                        wait_metric_at_least(edge, "mf_edge_accepted_total", accepted + 1)
                        assert_cut_at_deadline(self, clock, sock, 500, f"sent {first!r}")
                    finally:
                        sock.close()
            # The deadline ends at the upgrade: a WebSocket outlives it.
            ws = RawWebSocket.connect(edge)
            try:
                clock.advance(1200)
                ws.send_text('{"type":"ping","t":"later"}')
                self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "later"})
            finally:
                ws.close()
            clock.release()

if __name__ == "__main__":
    unittest.main()
