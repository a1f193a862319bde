"""Admission at the HTTP upgrade (docs/protocol.md section 8): Origin allow-list, HS256
JWT with exp/nbf/streams, edge-wide connection cap (503 + Retry-After),
per-source connection cap and rate (429)."""

import json
import time
import unittest

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, UNLIMITED_SOURCE, AdminEdge, ManualClock, HttpResponse, RawWebSocket, SdkClient, edge_config_file,
                          http_exchange, make_jwt, upgrade_request, write_run_file)

SECRET = b"0123456789abcdef-system-test-secret-key"


def upgrade(edge, path="/ws", headers=(), source=None):
    """Sends an upgrade request; returns the HttpResponse of a refusal, or
    None when the edge answered 101 (the socket is closed then)."""
    request, _ = upgrade_request(path, subprotocols=["meshedflow.v1"], extra_headers=headers)
    sock = edge.connect(source=source)
    try:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while b"\r\n\r\n" not in data:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if data.startswith(b"HTTP/1.1 101 "):
        return None
    if not data:
        raise AssertionError("the edge closed the connection without any HTTP answer to an upgrade request")
    return HttpResponse(data, True)


class OriginAllowList(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.edge = AdminEdge(args=["--allowed-origin", "https://ok.example", "--config",
                                   edge_config_file(UNLIMITED_SOURCE)], shards=1)
        cls.edge.start()

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)

    def test_allowed_origin_accepted(self):
        ws = RawWebSocket.connect(self.edge, extra_headers=["Origin: https://ok.example"])
        try:
            ws.send_text('{"type":"ping","t":1}')
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 1})
        finally:
            ws.close()

    def test_other_origins_refused_403(self):
        for origin in ("https://evil.example", "http://ok.example", "https://ok.example:8443",
                       "https://ok.example.evil", "null"):
            with self.subTest(origin=origin):
                response = upgrade(self.edge, headers=[f"Origin: {origin}"])
                self.assertIsNotNone(response, f"Origin {origin} was accepted")
                self.assertEqual(response.status, 403, response)

    def test_no_origin_accepted_by_default(self):
        # require_origin defaults to false: non-browser clients send none.
        self.assertIsNone(upgrade(self.edge))


class RequireOrigin(unittest.TestCase):
    def test_require_origin_refuses_missing_origin(self):
        config = edge_config_file(UNLIMITED_SOURCE, extra='[admission]\nrequire_origin = true\n'
                                                          'allowed_origins = ["https://ok.example"]\n')
        with AdminEdge(args=["--config", config], shards=1) as edge:
            response = upgrade(edge)
            self.assertIsNotNone(response)
            self.assertEqual(response.status, 403)
            self.assertIsNone(upgrade(edge, headers=["Origin: https://ok.example"]))


class JwtAdmission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        secret_file = write_run_file("jwt-secret", "")
        with open(secret_file, "wb") as f:
            f.write(SECRET)
        cls.edge = AdminEdge(args=["--jwt-secret-file", secret_file, "--allowed-origin", "https://ok.example",
                                   "--config", edge_config_file(UNLIMITED_SOURCE)], shards=2)
        cls.edge.start()

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)

    def token(self, **claims):
        claims.setdefault("exp", int(time.time()) + 600)
        return make_jwt(SECRET, claims)

    def client(self, token, query_prefix=""):
        c = SdkClient(self.edge, path=f"/ws?{query_prefix}token={token}")
        self.addCleanup(c.close)
        return c

    def test_valid_token_accepted(self):
        c = self.client(self.token(sub="viewer-1"))
        self.assertEqual(c.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})
        c.join("jwt-any", "r", "p-jwt-1")
        # Among other query parameters.
        c2 = self.client(self.token(nbf=int(time.time()) - 10), query_prefix="stream=jwt-any&")
        c2.join("jwt-any", "r", "p-jwt-2")

    def test_refused_tokens_401(self):
        now = int(time.time())
        header, payload, signature = self.token().split(".")
        cases = {
            "missing": "/ws",
            "missing in a query": "/ws?stream=s1",
            "empty": "/ws?token=",
            "expired": "/ws?token=" + make_jwt(SECRET, {"exp": now - 300}),
            "nbf in the future": "/ws?token=" + make_jwt(SECRET, {"exp": now + 600, "nbf": now + 300}),
            "bad signature": "/ws?token=" + make_jwt(b"another-secret-of-the-same-length-xxxxx", {"exp": now + 600}),
            "tampered payload": "/ws?token=" + header + "." + make_jwt(SECRET, {"exp": now + 9999}).split(".")[1]
                                + "." + signature,
            "alg none": "/ws?token=" + make_jwt(SECRET, {"exp": now + 600}, alg="none"),
            "alg none with signature": "/ws?token=" + make_jwt(SECRET, {"exp": now + 600},
                                                               header={"alg": "none", "typ": "JWT"},
                                                               signature=signature),
            "alg HS512": "/ws?token=" + make_jwt(SECRET, {"exp": now + 600}, header={"alg": "HS512"}),
            "no exp": "/ws?token=" + make_jwt(SECRET, {"sub": "x"}),
            "garbage": "/ws?token=abc.def",
        }
        for name, path in cases.items():
            with self.subTest(name):
                response = upgrade(self.edge, path=path)
                self.assertIsNotNone(response, f"{name}: token accepted")
                self.assertEqual(response.status, 401, f"{name}: {response}")

    def test_origin_checked_before_token(self):
        response = upgrade(self.edge, path="/ws", headers=["Origin: https://evil.example"])
        self.assertEqual(response.status, 403, "spec order: Origin (403) before the token (401)")
        response = upgrade(self.edge, path="/ws?token=" + self.token(), headers=["Origin: https://ok.example"])
        self.assertIsNone(response)

    def test_streams_claim_limits_joins(self):
        c = self.client(self.token(streams=["jwt-s1"]))
        c.join("jwt-s1", "r", "p-claim-1")
        c.send({"type": "join", "streamId": "jwt-s2", "rendition": "r", "peerId": "p-claim-1", "id": "sw"})
        err = c.recv()
        self.assertEqual((err.get("type"), err.get("code"), err.get("ref")), ("error", "bad-request", "sw"), err)
        self.assertIn("streamId", err.get("message", ""))
        # Still joined to s1.
        self.assertEqual(c.need_peers()["type"], "peers")
        # A fresh connection with the same token cannot join s2 either.
        d = self.client(self.token(streams=["jwt-s1"]))
        d.send({"type": "join", "streamId": "jwt-s2", "rendition": "r", "peerId": "p-claim-2"})
        self.assertEqual(d.recv().get("code"), "bad-request")
        d.send({"type": "need-peers"})
        self.assertEqual(d.recv().get("code"), "not-joined")

    def test_streams_claim_star_allows_any(self):
        c = self.client(self.token(streams=["*"]))
        c.join("jwt-x1", "r", "p-star")
        c.join("jwt-x2", "r", "p-star")

    def test_streams_claim_several(self):
        c = self.client(self.token(streams=["jwt-a", "jwt-b"]))
        c.join("jwt-a", "r", "p-multi")
        c.join("jwt-b", "r", "p-multi")
        c.send({"type": "join", "streamId": "jwt-c", "rendition": "r", "peerId": "p-multi"})
        self.assertEqual(c.recv().get("code"), "bad-request")


class ConnectionCap(unittest.TestCase):
    def test_third_connection_gets_503_with_retry_after(self):
        with AdminEdge(args=["--max-connections", "2", "--config", edge_config_file(UNLIMITED_SOURCE)],
                       shards=1) as edge:
            first = SdkClient(edge)
            second = SdkClient(edge)
            try:
                response = upgrade(edge)
                self.assertIsNotNone(response, "a third WebSocket was admitted with --max-connections 2")
                self.assertEqual(response.status, 503, response)
                retry = response.header("Retry-After")
                self.assertIsNotNone(retry, "503 without Retry-After")
                self.assertTrue(retry.isdigit() and int(retry) > 0, retry)
                # /healthz is not a WebSocket: still answered.
                health = http_exchange(edge, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(health.status, 200)
                # The two admitted ones work.
                self.assertEqual(second.request({"type": "ping", "t": 2}), {"type": "pong", "t": 2})
                first.close()
                deadline = time.monotonic() + EXPECT_TIMEOUT_S
                while upgrade(edge) is not None:
                    self.assertLess(time.monotonic(), deadline, "the freed slot was not reused")
                    time.sleep(0.05)
            finally:
                first.close()
                second.close()


class JwtExpiry(unittest.TestCase):
    def test_connection_closes_1008_when_its_token_expires(self):
        # Admission lasts as long as the token: at exp (leeway 0 here) the
        # edge closes with 1008 ("admission revoked", docs/protocol.md section 7), so a
        # connection cannot outlive its token and join streams afterwards.
        secret_file = write_run_file("jwt-secret", "")
        with open(secret_file, "wb") as f:
            f.write(SECRET)
        config = edge_config_file(UNLIMITED_SOURCE, extra="[admission]\njwt_leeway_s = 0\n")
        with AdminEdge(args=["--jwt-secret-file", secret_file, "--config", config], shards=2) as edge:
            token = make_jwt(SECRET, {"exp": int(time.time()) + 2})
            ws = RawWebSocket.connect(edge, path=f"/ws?token={token}")
            self.addCleanup(ws.close)
            ws.send_text(json.dumps({"type": "join", "streamId": "jwt-exp", "rendition": "r", "peerId": "p-exp-1"}))
            self.assertEqual(json.loads(ws.recv_message())["type"], "joined")
            # The close is the event waited for; 2 s of token life plus a
            # generous bound for a loaded machine.
            code, _ = ws.expect_close(timeout=30.0, allow_messages=True)
            self.assertEqual(code, 1008)
            closed, _ = ws.wait_eof(5.0)
            self.assertTrue(closed, "TCP not closed after the 1008 close frame")
            self.assertEqual(edge.metric("mf_edge_policy_closes_total", reason="token_expired"), 1)
            self.assertEqual(edge.metric("mf_edge_policy_closes_total", reason="error_limit"), 0)


class PerSourceLimits(unittest.TestCase):
    def test_per_source_connection_cap_429(self):
        config = edge_config_file({"per_source_connections": 3, "per_source_rate": 0})
        with AdminEdge(args=["--config", config], shards=2) as edge:
            clients = [SdkClient(edge) for _ in range(3)]
            try:
                for _ in range(2):
                    response = upgrade(edge)
                    self.assertIsNotNone(response, "a 4th connection from one address was admitted (cap 3)")
                    self.assertEqual(response.status, 429, response)
                clients[0].close()
                deadline = time.monotonic() + EXPECT_TIMEOUT_S
                while True:
                    response = upgrade(edge)
                    if response is None:
                        break
                    self.assertEqual(response.status, 429)
                    self.assertLess(time.monotonic(), deadline, "the freed per-source slot was not reused")
                    time.sleep(0.05)
            finally:
                for c in clients:
                    c.close()

    @needs_test_hooks
    def test_per_source_rate_429(self):
        # The edge's clock moves only when the test moves it: no token comes
        # back while the 12 upgrades are made, however slow this client is.
        config = edge_config_file({"per_source_connections": 0, "per_source_rate": 5, "per_source_burst": 5})
        with ManualClock() as clock, AdminEdge(args=["--config", config], shards=2) as edge:
            clock.advance(1000)  # the start-up /healthz probes may have used tokens: 1 s refills all 5
            # From an address of its own besides: the harness's probes come
            # from 127.0.0.1 and are counted at accept like any connection.
            statuses = []
            for _ in range(12):
                try:
                    response = upgrade(edge, source="127.0.0.3")
                    statuses.append(101 if response is None else response.status)
                except AssertionError:
                    statuses.append("closed without answer")
            self.assertEqual(statuses, [101] * 5 + [429] * 7, "12 upgrades with rate 5 burst 5 and no time passing")
            clock.advance(200)
            self.assertIsNone(upgrade(edge, source="127.0.0.3"), "tokens come back at 5/s: one after 200 ms")
            response = upgrade(edge, source="127.0.0.3")
            self.assertEqual(response.status if response is not None else 101, 429, "only one token after 200 ms")
            clock.release()


if __name__ == "__main__":
    unittest.main()
