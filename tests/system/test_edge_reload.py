"""SIGHUP reloads the edge's configuration as it does the ingress's
(docs/edge.md, "Reload"): the certificate, the limits, the admission
checks and the timeouts change on every shard, open sessions stay; a file that does not load
keeps the running settings. Each reload is known applied everywhere by the
ordering argument of edge_process.sighup_reload, not by waiting."""

import json
import os
import ssl
import unittest

from edge_process import (EXPECT_TIMEOUT_S, AdminEdge, RawWebSocket, SdkClient, class_fixture, sighup_reload, tls_material,
                          wait_until, write_run_file)
from ingress_process import certificate_der, make_certificate, trust_context

SHARDS = 3
# Enough connections that, spread by the kernel over the shards' listeners,
# every shard takes some (each one is checked, whichever shard takes it).
PROBES = 4 * SHARDS


def config_text(cert, origins=(), per_source_connections=1000, messages_per_second=1000, message_burst=1000,
                heartbeat_ms=15000):
    origins_list = ", ".join(json.dumps(o) for o in origins)
    return (f'[tls]\ncertificate = "{cert[0]}"\nkey = "{cert[1]}"\n'
            f"[limits]\nper_source_connections = {per_source_connections}\nper_source_rate = 0\n"
            f"messages_per_second = {messages_per_second}\nmessage_burst = {message_burst}\n"
            f"[admission]\nallowed_origins = [{origins_list}]\n"
            f"[timeouts]\nheartbeat_ms = {heartbeat_ms}\n")


class ReloadEdge(AdminEdge):
    """An edge whose TLS settings come from its --config file (so that a
    reload can change them), trusted with both test certificates."""

    def __init__(self, config_path, certificates, **kwargs):
        super().__init__(args=["--config", config_path], shards=SHARDS, **kwargs)
        self.context = trust_context(*(c[0] for c in certificates))

    def connect(self, timeout=EXPECT_TIMEOUT_S, tls=None, **kwargs):
        # TLS from the file (self.tls stays false, or Edge would add
        # --tls-cert flags, which a reload reads again and which win).
        kwargs.setdefault("ssl_context", self.context)
        return super().connect(timeout=timeout, tls=True if tls is None else tls, **kwargs)

    def served_certificate(self):
        sock = self.connect()
        try:
            return sock.getpeercert(binary_form=True)
        finally:
            sock.close()

    def reload(self):
        return sighup_reload(self, "mf_edge_reloads_total")


def upgrade_status(edge, origin):
    """The status line's code of an upgrade sent with `origin`; "closed" for
    a connection refused at accept (per source), before any TLS."""
    try:
        ws = RawWebSocket.connect(edge, extra_headers=[f"Origin: {origin}"])
    except (ssl.SSLError, ConnectionError):
        return "closed"
    except AssertionError as refused:
        text = str(refused)
        return int(text.split("HTTP/1.1 ", 1)[1][:3])
    ws.close()
    return 101


class EdgeReload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cert1 = tls_material()
        cls.cert2 = make_certificate(["localhost"], "ec", tag="edge-reloaded")
        cls.config_path = write_run_file(f"edge-reload-{os.getpid()}.toml", config_text(cls.cert1))
        cls.edge = class_fixture(cls, ReloadEdge(cls.config_path, [cls.cert1, cls.cert2]))

    def rewrite(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def ping(self, ws, t):
        ws.send_text(json.dumps({"type": "ping", "t": t}))
        self.assertEqual(json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S)), {"type": "pong", "t": t})

    def test_reload_changes_certificate_limits_and_admission_on_every_shard(self):
        edge = self.edge
        der1, der2 = certificate_der(self.cert1[0]), certificate_der(self.cert2[0])
        self.addCleanup(self.rewrite, config_text(self.cert1))
        open_sessions = [RawWebSocket.connect(edge) for _ in range(PROBES)]
        self.addCleanup(lambda: [ws.close() for ws in open_sessions])
        for i, ws in enumerate(open_sessions):
            self.ping(ws, i)
        self.assertEqual({edge.served_certificate() for _ in range(PROBES)}, {der1})
        self.assertEqual({upgrade_status(edge, "https://other.test") for _ in range(PROBES)}, {101})

        # Certificate and admission.
        self.rewrite(config_text(self.cert2, origins=["https://good.test"]))
        self.assertEqual(self.edge.reload(), "ok")
        self.assertEqual({edge.served_certificate() for _ in range(PROBES)}, {der2})
        self.assertEqual({upgrade_status(edge, "https://other.test") for _ in range(PROBES)}, {403})
        self.assertEqual({upgrade_status(edge, "https://good.test") for _ in range(PROBES)}, {101})
        for i, ws in enumerate(open_sessions):  # the sessions opened before stay
            self.ping(ws, 100 + i)

        # Per-connection limits: a burst of 1 at 1 a second refuses most of
        # 10 messages sent at once, whichever shard holds the connection.
        self.rewrite(config_text(self.cert2, messages_per_second=1, message_burst=1))
        self.assertEqual(self.edge.reload(), "ok")
        for _ in range(SHARDS):
            ws = RawWebSocket.connect(edge)
            try:
                # 10: under the 20 drops that close a connection (4003).
                for t in range(10):
                    ws.send_text(json.dumps({"type": "ping", "t": t}))
                replies = [json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S)) for _ in range(10)]
                limited = [r for r in replies if r.get("type") == "error" and r.get("code") == "rate-limited"]
                self.assertGreater(len(limited), 0, replies)
            finally:
                ws.close()

        # Per-source limits: the source's owner shard counts the
        # PROBES sessions still open, so one more is refused (at accept,
        # before the TLS handshake).
        self.rewrite(config_text(self.cert2, per_source_connections=PROBES))
        self.assertEqual(self.edge.reload(), "ok")
        self.assertEqual(upgrade_status(edge, "https://good.test"), "closed")
        open_sessions.pop().close()
        # The release travels to the owner shard: wait for its effect.
        wait_until(lambda: upgrade_status(edge, "https://good.test") == 101, EXPECT_TIMEOUT_S,
                   "a place freed by a closed session")

    def test_reload_changes_the_heartbeat_on_every_shard(self):
        # The heartbeat a joined peer is told (heartbeatMs) is the one its
        # connection's liveness timer runs on; the handshake and first-bytes
        # timeouts change with it (docs/edge.md, "Reload").
        edge = self.edge
        self.addCleanup(edge.reload)  # runs after the rewrite below
        self.addCleanup(self.rewrite, config_text(self.cert1))
        # From the base file (another test may have left its limits running).
        self.rewrite(config_text(self.cert1))
        self.assertEqual(edge.reload(), "ok")

        def heartbeats(tag):
            seen = set()
            for i in range(PROBES):
                peer = SdkClient(edge)
                try:
                    joined, _ = peer.join("reload-heartbeat", "r", f"{tag}-{i}", expect_peers=False)
                    seen.add(joined["heartbeatMs"])
                finally:
                    peer.close()
            return seen

        self.assertEqual(heartbeats("before"), {15000})
        self.rewrite(config_text(self.cert1, heartbeat_ms=7000))
        self.assertEqual(edge.reload(), "ok")
        self.assertEqual(heartbeats("after"), {7000})

    def test_bad_file_keeps_the_running_configuration(self):
        edge = self.edge
        self.addCleanup(self.rewrite, config_text(self.cert1))
        self.assertEqual(edge.reload(), "ok")
        served = edge.served_certificate()
        failed = edge.metric("mf_edge_reloads_total", result="failed")
        for bad in (config_text(("/nonexistent/cert.pem", "/nonexistent/key.pem"), origins=["https://good.test"]),
                    config_text(self.cert1, origins=["https://good.test"]) + "[limits]\nmax_conections = 5\n",
                    # TLS off: the listener was built with it (a restart's change).
                    config_text(self.cert1, origins=["https://good.test"]).split("[limits]", 1)[1].join(["[limits]", ""])):
            with self.subTest(bad=bad.splitlines()[-1]):
                self.rewrite(bad)
                self.assertEqual(edge.reload(), "failed")
                self.assertTrue(edge.alive())
                self.assertEqual(edge.served_certificate(), served)
                self.assertEqual(upgrade_status(edge, "https://other.test"), 101, "the old admission stays")
        self.assertEqual(edge.metric("mf_edge_reloads_total", result="failed"), failed + 3)
        self.assertIn("reload failed, the running configuration stays", edge.stderr_text())


if __name__ == "__main__":
    unittest.main()
