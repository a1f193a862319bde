"""TLS of mf-edge: versions, ALPN, stateless-ticket resumption across shards,
bad handshakes and the handshake deadline."""

import json
import os
import random
import socket
import ssl
import time
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, OP_TEXT, AdminEdge, Edge, ManualClock, assert_cut_at_deadline, class_fixture,
                          wait_metric_at_least, HttpResponse, RawWebSocket, client_ssl_context, encode_frame,
                          read_until_eof, settle_tls13, upgrade_request, accept_for)

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


def get_healthz(sock, timeout=EXPECT_TIMEOUT_S):
    sock.sendall(HEALTHZ)
    data, closed = read_until_eof(sock, timeout)
    return HttpResponse(data, closed)


class TlsCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, AdminEdge(tls=True, shards=2))

    def assert_healthy(self, **connect_kwargs):
        sock = self.edge.connect(**connect_kwargs)
        try:
            response = get_healthz(sock)
        finally:
            sock.close()
        self.assertEqual((response.status, response.body, response.closed), (200, b"ok", True))

    def check_version(self, version, name):
        ctx = client_ssl_context(min_version=version, max_version=version)
        sock = self.edge.connect(ssl_context=ctx)
        try:
            self.assertEqual(sock.version(), name)
            ws = RawWebSocket(sock)
            ws.upgrade()
            ws.send_text('{"type":"ping","t":"' + name + '"}')
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": name})
        finally:
            sock.close()
        sock = self.edge.connect(ssl_context=ctx)
        try:
            response = get_healthz(sock)
            self.assertEqual((response.status, response.body), (200, b"ok"))
        finally:
            sock.close()

    def test_tls12(self):
        self.check_version(ssl.TLSVersion.TLSv1_2, "TLSv1.2")

    def test_tls13(self):
        self.check_version(ssl.TLSVersion.TLSv1_3, "TLSv1.3")

    def test_old_versions_refused_and_edge_keeps_serving(self):
        for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            with self.subTest(version=version.name):
                ctx = client_ssl_context(min_version=version, max_version=version)
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                with self.assertRaises(ssl.SSLError) as raised:
                    sock = self.edge.connect(ssl_context=ctx)
                    sock.close()
                text = str(raised.exception).lower()
                self.assertNotIn("no protocols available", text,
                                 "the client library could not even offer the old version: the test proves nothing")
                self.assertNotIn("no_protocols_available", text)
                self.assert_healthy()

    def test_alpn_http11(self):
        for offered in (["http/1.1"], ["h2", "http/1.1"], ["http/1.1", "h2"]):
            with self.subTest(offered=offered):
                sock = self.edge.connect(ssl_context=client_ssl_context(alpn=offered))
                try:
                    self.assertEqual(sock.selected_alpn_protocol(), "http/1.1")
                    response = get_healthz(sock)
                    self.assertEqual(response.status, 200)
                finally:
                    sock.close()
        sock = self.edge.connect()
        try:
            self.assertIsNone(sock.selected_alpn_protocol())
        finally:
            sock.close()

    def check_resumption(self, version, settle_after_resumption):
        ctx = client_ssl_context(min_version=version, max_version=version)
        sock = self.edge.connect(ssl_context=ctx)
        try:
            self.assertFalse(sock.session_reused)
            ws = RawWebSocket(sock)
            ws.upgrade()
            ws.send_text('{"type":"ping","t":0}')
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 0})
            session = sock.session
            self.assertIsNotNone(session)
            self.assertTrue(session.has_ticket, "the edge issued no session ticket")
        finally:
            sock.close()
        resumed = []
        for i in range(10):
            sock = self.edge.connect(ssl_context=ctx, session=session, settle=False)
            try:
                resumed.append(sock.session_reused)
                if settle_after_resumption:
                    # TLS 1.2 resumption: the client's Finished is its last
                    # handshake flight; keep it out of the request's segment
                    # (see test FirstRequestWithClientFinished).
                    time.sleep(0.05)
                else:
                    settle_tls13(sock)
                response = get_healthz(sock)
                self.assertEqual((response.status, response.body), (200, b"ok"), f"reconnect {i}")
            finally:
                sock.close()
        self.assertEqual(resumed, [True] * 10, "every reconnect must resume (tickets are shared by all shards)")

    def test_resumption_tls13_across_shards(self):
        self.check_resumption(ssl.TLSVersion.TLSv1_3, settle_after_resumption=False)

    def test_resumption_tls12_across_shards(self):
        self.check_resumption(ssl.TLSVersion.TLSv1_2, settle_after_resumption=True)

    def check_garbage_closed(self, garbage, what):
        """Closed because of what it sent, not at the handshake deadline
        (the edge's count of deadline closes did not move)."""
        timeouts = self.edge.metric("mf_edge_handshake_timeouts_total") or 0
        sock = socket.create_connection((self.edge.host, self.edge.port), timeout=EXPECT_TIMEOUT_S)
        try:
            sock.sendall(garbage)
            data, closed = read_until_eof(sock, EXPECT_TIMEOUT_S)
        except ConnectionResetError:
            data, closed = b"", True
        finally:
            sock.close()
        self.assertTrue(closed, f"{what}: not closed")
        self.assertEqual(self.edge.metric("mf_edge_handshake_timeouts_total") or 0, timeouts,
                         f"{what}: closed at the handshake deadline, not for what it sent")
        self.assertFalse(data.startswith(b"HTTP/"), f"{what}: answered in plaintext HTTP: {data[:80]!r}")
        if data:
            self.assertEqual(data[0], 0x15, f"{what}: anything sent back must be a TLS alert record: {data[:40]!r}")

    def test_garbage_instead_of_client_hello(self):
        rng = random.Random(4711)
        self.check_garbage_closed(HEALTHZ, "plaintext HTTP on the TLS port")
        self.check_garbage_closed(bytes(rng.randrange(256) for _ in range(600)), "random bytes")
        self.check_garbage_closed(b"\x16\x03\x01\xff\xff" + bytes(300), "oversized handshake record")
        self.check_garbage_closed(b"\x16\x03\x01\x00\x10" + bytes(16), "empty ClientHello body")
        self.assert_healthy()


@needs_test_hooks
class TlsHandshakeTimeout(unittest.TestCase):
    def test_silent_client_closed_at_handshake_timeout(self):
        # On the manual clock: the deadline passes when the test moves the
        # clock, however slowly this machine runs.
        with ManualClock() as clock, AdminEdge(tls=True, args=["--handshake-timeout-ms", "500"]) as edge:
            for what, first_bytes in (("nothing sent", b""), ("half a ClientHello", b"\x16\x03\x01\x02\x00\x01")):
                with self.subTest(what):
                    accepted = edge.metric("mf_edge_accepted_total")
                    sock = socket.create_connection((edge.host, edge.port), timeout=EXPECT_TIMEOUT_S)
                    try:
                        if first_bytes:
                            sock.sendall(first_bytes)
                        wait_metric_at_least(edge, "mf_edge_accepted_total", accepted + 1)
                        assert_cut_at_deadline(self, clock, sock, 500, what)
                    finally:
                        sock.close()
            # A real client is not affected by the short deadline.
            sock = edge.connect()
            try:
                self.assertEqual(get_healthz(sock).status, 200)
            finally:
                sock.close()
            clock.release()


class FirstRequestWithClientFinished(unittest.TestCase):
    """A TLS client may send its first application data right behind its
    Finished, in the same TCP segment (TLS 1.3 always allows it; TLS 1.2
    after an abbreviated handshake too). The server must then complete the
    handshake and serve the request. Real clients hit this whenever the
    server reads the two flights together."""

    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, Edge(tls=True, shards=1))

    def exchange_coalesced(self, ctx, request, session=None):
        """Handshakes with a memory-BIO TLS client, then sends the client's
        last handshake flight and `request` in ONE send(); returns (the
        plaintext received until EOF or 3 s, session, session_reused)."""
        sock = socket.create_connection((self.edge.host, self.edge.port), timeout=EXPECT_TIMEOUT_S)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost", session=session)
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pending = outgoing.read()
                    if pending:
                        sock.sendall(pending)
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("the edge closed during the handshake")
                    incoming.write(data)
            tls.write(request)
            sock.sendall(outgoing.read())  # client Finished + request, one segment
            plaintext = b""
            deadline = time.monotonic() + EXPECT_TIMEOUT_S
            # Until the response head is complete (an upgraded connection
            # stays open), the edge closes, or the hang bound passes.
            while time.monotonic() < deadline and b"\r\n\r\n" not in plaintext:
                try:
                    chunk = tls.read(65536)
                    if not chunk:
                        break
                    plaintext += chunk
                    continue
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not data:
                    incoming.write_eof()
                else:
                    incoming.write(data)
            return plaintext, tls.session, tls.session_reused
        finally:
            sock.close()

    def test_tls13_request_in_same_segment_as_finished(self):
        ctx = client_ssl_context(min_version=ssl.TLSVersion.TLSv1_3)
        plaintext, _, _ = self.exchange_coalesced(ctx, HEALTHZ)
        self.assertTrue(plaintext.startswith(b"HTTP/1.1 200 "),
                        f"GET /healthz sent together with the client Finished: got {plaintext[:100]!r}")
        request, key = upgrade_request()
        plaintext, _, _ = self.exchange_coalesced(ctx, request + encode_frame(OP_TEXT, '{"type":"ping","t":1}'))
        self.assertTrue(plaintext.startswith(b"HTTP/1.1 101 "),
                        f"upgrade sent together with the client Finished: got {plaintext[:100]!r}")
        self.assertIn(accept_for(key).encode(), plaintext)

    def test_tls12_resumed_request_in_same_segment_as_finished(self):
        ctx = client_ssl_context(min_version=ssl.TLSVersion.TLSv1_2, max_version=ssl.TLSVersion.TLSv1_2)
        sock = self.edge.connect(ssl_context=ctx)
        try:
            self.assertEqual(get_healthz(sock).status, 200)
            session = sock.session
        finally:
            sock.close()
        plaintext, _, reused = self.exchange_coalesced(ctx, HEALTHZ, session=session)
        self.assertTrue(reused, "the TLS 1.2 session was not resumed")
        self.assertTrue(plaintext.startswith(b"HTTP/1.1 200 "),
                        f"GET /healthz sent together with the client Finished of a resumed TLS 1.2 handshake: "
                        f"got {plaintext[:100]!r}")


if __name__ == "__main__":
    unittest.main()
