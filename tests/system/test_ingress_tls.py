"""TLS termination in mf-ingress: openssl s_client (versions, ALPN, the
certificate served, SNI with several certificates, unknown names), hostile
or broken ClientHellos, and the handshake timeout."""

import json
import random
import re
import socket
import ssl
import time
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, TIMER_TICK_MS, ManualClock, RawWebSocket, assert_cut_at_deadline,
                          read_until_eof, tls_material)
from ingress_process import (Ingress, ProxyBackend, class_fixture, wait_until, client_hello_bytes, echo_handler,
                             ingress_with_edges, make_certificate, s_client, trust_context)

SECLEVEL0 = "DEFAULT:@SECLEVEL=0"


def subject_of(output):
    match = re.search(r"^subject=(.*)$", output, re.M)
    return match.group(1).strip() if match else None


def handshake_ok(output):
    """s_client negotiated a cipher (a finished handshake)."""
    return re.search(r"^New, TLSv[\d.]+, Cipher is (?!\(NONE\))", output, re.M) is not None


class IngressSClient(unittest.TestCase):
    """One ingress with one certificate (the run's "localhost" one), unknown
    names refused."""

    @classmethod
    def setUpClass(cls):
        cls.ingress, _ = class_fixture(cls, ingress_with_edges(count=1, settings={"tls": {"unknown_sni": "refuse"}}))

    def test_handshake_alpn_and_certificate(self):
        cert, _ = tls_material()
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=version):
                code, out = s_client(self.ingress.port, "-servername", "localhost", "-alpn", "http/1.1",
                                     "-CAfile", cert, version)
                self.assertEqual(code, 0, out)
                self.assertTrue(handshake_ok(out), out)
                self.assertIn("ALPN protocol: http/1.1", out)
                self.assertEqual(subject_of(out), "CN = localhost", out)
                self.assertIn("Verify return code: 0 (ok)", out, "the certificate served is the configured one")
                # The "New, <version>" line: the SSL-Session block (with
                # "Protocol  :") appears for TLS 1.3 only once the server's
                # NewSessionTicket arrived, which races with s_client
                # reading EOF on its stdin and leaving.
                self.assertIn("New, TLSv1." + version[-1] + ",", out)

    def test_no_alpn_offered_still_works(self):
        code, out = s_client(self.ingress.port, "-servername", "localhost")
        self.assertEqual(code, 0, out)
        self.assertTrue(handshake_ok(out), out)
        self.assertIn("No ALPN negotiated", out)

    def test_old_versions_refused(self):
        for version in ("-tls1_1", "-tls1"):
            with self.subTest(version=version):
                code, out = s_client(self.ingress.port, "-servername", "localhost", version, "-cipher", SECLEVEL0)
                self.assertNotIn("no protocols available", out, "the client could not even offer the version")
                self.assertRegex(out, r"written [1-9]\d* bytes", "a ClientHello was sent")
                self.assertFalse(handshake_ok(out), out)
                self.assertNotEqual(code, 0, out)
        self.assert_still_serving()

    def test_no_sni_gets_the_default_certificate(self):
        code, out = s_client(self.ingress.port, "-noservername")
        self.assertEqual(code, 0, out)
        self.assertTrue(handshake_ok(out), out)
        self.assertEqual(subject_of(out), "CN = localhost", out)

    def test_unknown_sni_refused_with_unrecognized_name(self):
        before = self.ingress.metric("mf_ingress_tls_failures_total", reason="unknown_sni")
        code, out = s_client(self.ingress.port, "-servername", "nosuch.example")
        self.assertFalse(handshake_ok(out), out)
        self.assertNotEqual(code, 0, out)
        self.ingress.wait_metric("mf_ingress_tls_failures_total", lambda v: v == before + 1, reason="unknown_sni")
        # The contract: "a client whose SNI matches no certificate gets alert
        # unrecognized_name" (alert 112).
        self.assertRegex(out, r"unrecognized name|alert number 112",
                         "no unrecognized_name alert reached the client (the ingress closed without it)")

    def assert_still_serving(self):
        ws = RawWebSocket.connect(self.ingress)
        self.addCleanup(ws.close)
        ws.send_text(json.dumps({"type": "ping", "t": 1}))
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 1})


class IngressSniCertificates(unittest.TestCase):
    """Two certificates: a.test (ECDSA, first: the default) and b.test (RSA)."""

    @classmethod
    def setUpClass(cls):
        cls.a = make_certificate(["a.test"], "ec")
        cls.b = make_certificate(["b.test", "*.b.test"], "rsa")
        cls.backend = class_fixture(cls, ProxyBackend(echo_handler))
        cls.ingress = class_fixture(cls, Ingress(backends=[cls.backend.address], certificates=[cls.a, cls.b],
                                                 settings={"tls": {"unknown_sni": "refuse"}}))

    def serve(self, *options):
        code, out = s_client(self.ingress.port, *options)
        self.assertEqual(code, 0, out)
        self.assertTrue(handshake_ok(out), out)
        return out

    def test_each_name_gets_its_own_certificate(self):
        out = self.serve("-servername", "a.test", "-CAfile", self.a[0], "-verify_hostname", "a.test")
        self.assertEqual(subject_of(out), "CN = a.test")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Server public key is 256 bit")
        out = self.serve("-servername", "b.test", "-CAfile", self.b[0], "-verify_hostname", "b.test")
        self.assertEqual(subject_of(out), "CN = b.test")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"Server public key is 2048 bit")

    def test_names_case_insensitive_and_wildcards(self):
        self.assertEqual(subject_of(self.serve("-servername", "B.TEST")), "CN = b.test")
        self.assertEqual(subject_of(self.serve("-servername", "x.b.test")), "CN = b.test")

    def test_python_client_verifies_each_name(self):
        for name, cert in (("a.test", self.a[0]), ("b.test", self.b[0])):
            with self.subTest(name=name):
                sock = self.ingress.connect(ssl_context=trust_context(cert), server_hostname=name)
                self.addCleanup(sock.close)
                sock.sendall(b"hello " + name.encode())
                self.assertEqual(sock.recv(100), b"hello " + name.encode())
                tunnel = self.backend.tunnel_for(sock.getsockname())
                self.assertEqual(tunnel.header.tlvs.get(0x02), name.encode())

    def test_no_sni_gets_the_first_certificate(self):
        self.assertEqual(subject_of(self.serve("-noservername")), "CN = a.test")

    def test_unknown_name_refused(self):
        code, out = s_client(self.ingress.port, "-servername", "c.test")
        self.assertNotEqual(code, 0, out)
        self.assertFalse(handshake_ok(out), out)
        # Still serving the known names afterwards.
        self.assertEqual(subject_of(self.serve("-servername", "a.test")), "CN = a.test")


class IngressUnknownSniDefault(unittest.TestCase):
    def test_unknown_name_gets_the_first_certificate(self):
        a = make_certificate(["a.test"], "ec")
        b = make_certificate(["b.test", "*.b.test"], "rsa")
        with ProxyBackend(echo_handler) as backend, \
                Ingress(backends=[backend.address], certificates=[b, a],
                        settings={"tls": {"unknown_sni": "default"}}) as ingress:
            code, out = s_client(ingress.port, "-servername", "nosuch.example")
            self.assertEqual(code, 0, out)
            self.assertTrue(handshake_ok(out), out)
            self.assertEqual(subject_of(out), "CN = b.test", out)


def bad_clients():
    """(name, bytes to send, expected failure reason or None) of hostile or
    broken first flights."""
    rng = random.Random(4711)
    hello = client_hello_bytes()
    corrupted = bytearray(hello)
    for i in range(9, 60):
        corrupted[i] ^= 0x5A
    return [
        ("plain HTTP on the TLS port", b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n", "protocol"),
        ("random bytes", bytes(rng.randrange(256) for _ in range(600)), None),
        ("oversized record", b"\x16\x03\x01\xff\xff" + bytes(300), None),
        ("empty ClientHello body", b"\x16\x03\x01\x00\x10" + bytes(16), "protocol"),
        ("corrupted ClientHello", bytes(corrupted), "protocol"),
    ]


@needs_test_hooks
class IngressBadClients(unittest.TestCase):
    """Handshake timeout 500 ms. Bad clients are cut cleanly while an
    ordinary client carries on. The ingress runs on the manual clock: no
    deadline passes unless the test moves the clock, so a close while it
    stands still is a refusal, never the timeout."""

    TIMEOUT_MS = 500

    @classmethod
    def setUpClass(cls):
        cls.clock = class_fixture(cls, ManualClock())
        cls.ingress, _ = class_fixture(cls, ingress_with_edges(
            count=1, settings={"tls": {"handshake_timeout_ms": cls.TIMEOUT_MS}}))
        cls.addClassCleanup(cls.clock.release)  # cleanups run last first: before the servers stop

    def failures(self):
        samples = self.ingress.metrics()
        return {reason: self.ingress.metric("mf_ingress_tls_failures_total", samples, reason=reason)
                for reason in ("handshake_timeout", "protocol", "unknown_sni", "version", "other")}

    def ordinary_client(self):
        ws = RawWebSocket.connect(self.ingress)
        self.addCleanup(ws.close)
        return ws

    def assert_pong(self, ws, t):
        ws.send_text(json.dumps({"type": "ping", "t": t}))
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": t})

    def send_and_wait_close(self, data, what):
        """Sends `data` on a new connection; the ingress must close it with
        the clock standing still (so not at the handshake timeout)."""
        sock = socket.create_connection((self.ingress.host, self.ingress.port), timeout=EXPECT_TIMEOUT_S)
        try:
            sock.sendall(data)
            try:
                reply, closed = read_until_eof(sock, EXPECT_TIMEOUT_S)
            except ConnectionResetError:
                reply, closed = b"", True
        finally:
            sock.close()
        self.assertTrue(closed, f"{what}: not refused (still open with the clock standing still)")
        self.assertFalse(reply.startswith(b"HTTP/"), f"{what}: answered in plaintext HTTP: {reply[:80]!r}")
        if reply:
            self.assertEqual(reply[0], 0x15, f"{what}: anything sent back must be a TLS alert: {reply[:40]!r}")

    def test_garbage_refused_cleanly_and_counted(self):
        ws = self.ordinary_client()
        before = self.failures()
        expected = {}
        cases = bad_clients()
        for i, (what, data, reason) in enumerate(cases):
            with self.subTest(case=what):
                self.send_and_wait_close(data, what)
                if reason:
                    expected[reason] = expected.get(reason, 0) + 1
            self.assert_pong(ws, i)
        # Old versions through the ssl module.
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version.name):
                ctx = trust_context()
                ctx.minimum_version = ctx.maximum_version = version
                ctx.set_ciphers(SECLEVEL0)
                with self.assertRaises((ssl.SSLError, ConnectionError)) as raised:
                    self.ingress.connect(ssl_context=ctx).close()
                self.assertNotIn("no protocols available", str(raised.exception).lower())
                expected["version"] = expected.get("version", 0) + 1
            self.assert_pong(ws, 100)
        self.assertTrue(self.ingress.alive())
        total = len(cases) + 2

        def counted():
            after = self.failures()
            delta = {k: after[k] - before[k] for k in after}
            return delta if sum(delta.values()) >= total else None
        delta = wait_until(counted, EXPECT_TIMEOUT_S,
                           lambda: f"tls_failures_total did not count {total} failures: {self.failures()} (before {before})")
        self.assertEqual(sum(delta.values()), total, delta)
        self.assertEqual(delta["handshake_timeout"], 0, delta)
        for reason, count in expected.items():
            self.assertGreaterEqual(delta[reason], count, f"reason {reason}: {delta}")
        # A new ordinary client after all that.
        self.assert_pong(self.ordinary_client(), 200)

    def stalled(self, data, reply_kind, what):
        """Connects and sends `data` (maybe nothing): the ingress must keep the
        connection while its clock stands before the handshake timeout, and
        cut it once the clock has passed it."""
        accepted = self.ingress.metric("mf_ingress_accepted_total")
        sock = socket.create_connection((self.ingress.host, self.ingress.port), timeout=EXPECT_TIMEOUT_S)
        try:
            if data:
                sock.sendall(data)
            # Accepted: the deadline runs from the clock's current value.
            self.ingress.wait_metric("mf_ingress_accepted_total", lambda v: v >= accepted + 1)
            reply = assert_cut_at_deadline(self, self.clock, sock, self.TIMEOUT_MS, what)
        finally:
            sock.close()
        if reply:
            self.assertEqual(reply[0], reply_kind, f"{what}: unexpected reply {reply[:40]!r}")

    def test_stalled_handshakes_cut_at_the_timeout(self):
        ws = self.ordinary_client()
        before = self.failures()["handshake_timeout"]
        hello = client_hello_bytes()
        # (what, bytes sent, first byte of any reply: an alert, or the
        # server's handshake flight when the ClientHello was whole).
        cases = [("nothing sent", b"", 0x15), ("half a ClientHello", hello[:len(hello) // 2], 0x15),
                 ("record header only", hello[:5], 0x15),
                 ("a whole ClientHello, then silence", hello, 0x16)]
        for what, data, reply_kind in cases:
            with self.subTest(case=what):
                self.stalled(data, reply_kind, what)
            self.assert_pong(ws, 1)
        self.ingress.wait_metric("mf_ingress_tls_failures_total", lambda v: v - before == len(cases),
                                 reason="handshake_timeout")

    def test_many_stalled_at_once_do_not_block_ordinary_clients(self):
        # With the clock standing still the 40 stalled handshakes are never
        # cut: an ordinary client served meanwhile was not waiting for them.
        accepted = self.ingress.metric("mf_ingress_accepted_total")
        socks = []
        for _ in range(40):
            sock = socket.create_connection((self.ingress.host, self.ingress.port), timeout=EXPECT_TIMEOUT_S)
            self.addCleanup(sock.close)
            socks.append(sock)
        ws = self.ordinary_client()
        self.assert_pong(ws, 2)
        # All accepted: their deadlines run from the clock's current value.
        self.ingress.wait_metric("mf_ingress_accepted_total", lambda v: v >= accepted + 41)
        self.clock.advance(self.TIMEOUT_MS + TIMER_TICK_MS)
        for sock in socks:
            try:
                data, closed = read_until_eof(sock, EXPECT_TIMEOUT_S)
            except ConnectionResetError:
                closed = True
            self.assertTrue(closed, "a stalled handshake outlived the timeout")


if __name__ == "__main__":
    unittest.main()
