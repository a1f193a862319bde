"""The admin listener (--admin): /healthz and /metrics in the Prometheus
text format 0.0.4, with counters that follow what clients do."""

import json
import signal
import socket
import unittest

from edge_process import (SharedEdgeCase, EXPECT_TIMEOUT_S, wait_until, UNLIMITED_SOURCE, AdminEdge, SdkClient, admin_get, edge_config_file, encode_frame,
                          parse_prometheus, write_run_file)

ERROR_CODES = ("bad-json", "bad-request", "unknown-type", "not-joined", "peer-not-found", "peer-id-taken",
               "stream-full", "mesh-disabled", "rate-limited")

REQUIRED = {
    "mf_edge_connections": "gauge",
    "mf_edge_peers_joined": "gauge",
    "mf_edge_joins_total": "counter",
    "mf_edge_leaves_total": "counter",
    "mf_edge_signals_relayed_total": "counter",
    "mf_edge_signals_failed_total": "counter",
    "mf_edge_errors_total": "counter",
    "mf_edge_proposals_total": "counter",
    "mf_edge_join_to_peers_seconds": "histogram",
    "mf_edge_tls_handshakes_total": "counter",
    "mf_edge_tls_handshake_failures_total": "counter",
    "mf_edge_mailbox_drops_total": "counter",
    "mf_edge_p2p_bytes_total": "counter",
    "mf_edge_cdn_bytes_total": "counter",
    "mf_edge_uploaded_bytes_total": "counter",
    "mf_edge_stream_p2p_bytes_total": "counter",
    "mf_edge_stream_cdn_bytes_total": "counter",
    "mf_edge_stream_viewers": "gauge",
    "mf_edge_draining": "gauge",
}


class Scrape:
    def __init__(self, samples, types, text):
        self.samples, self.types, self.text = samples, types, text

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def value(self, name, **labels):
        v = self.get(name, **labels)
        if v is None:
            raise AssertionError(f"no series {name}{labels or ''} in /metrics:\n{self.text[:3000]}")
        return v

    def series(self, name):
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


class MetricsCase(SharedEdgeCase):
    SHARDS = 2
    EDGE_ID = "edge-metrics"

    def scrape(self):
        response = admin_get(self.edge.admin_port, "/metrics")
        self.assertEqual(response.status, 200, response)
        text = response.body.decode()
        samples, types = parse_prometheus(text)
        return Scrape(samples, types, text)

    def client(self):
        c = SdkClient(self.edge)
        self.addCleanup(c.close)
        return c

    def wait_for(self, predicate, what, timeout=EXPECT_TIMEOUT_S):
        """The scrape for which predicate(scrape) holds; on timeout the
        failure shows the last scrape."""
        last = []

        def check():
            last[:] = [self.scrape()]
            return last[0] if predicate(last[0]) else None
        return wait_until(check, timeout, what=lambda: f"{what}:\n{last[0].text[:4000]}")


class AdminEndpoints(MetricsCase):
    def test_healthz(self):
        response = admin_get(self.edge.admin_port, "/healthz")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, b"ok")

    def test_metrics_content_type_and_format(self):
        response = admin_get(self.edge.admin_port, "/metrics")
        self.assertEqual(response.status, 200)
        content_type = response.header("Content-Type") or ""
        self.assertTrue(content_type.replace(" ", "").startswith("text/plain;version=0.0.4"), content_type)
        body = response.body.decode()
        length = response.header("Content-Length")
        if length is not None:
            self.assertEqual(int(length), len(response.body))
        self.assertTrue(body.endswith("\n"), "the exposition ends with a newline")
        samples, types = parse_prometheus(body)
        for name, kind in REQUIRED.items():
            with self.subTest(name):
                self.assertEqual(types.get(name), kind, f"# TYPE {name} {kind} missing")
        names = {n for n, _ in samples}
        for name in REQUIRED:
            if name.startswith("mf_edge_stream_") or REQUIRED[name] == "histogram":
                continue
            with self.subTest(series=name):
                self.assertTrue(any(n == name for n in names), f"no sample of {name}")
        for code in ERROR_CODES:
            with self.subTest(code=code):
                self.assertIsNotNone(samples.get(("mf_edge_errors_total", frozenset({("code", code)}))),
                                     f'mf_edge_errors_total{{code="{code}"}} missing (one series per error code)')
        for suffix in ("_sum", "_count"):
            self.assertIn(("mf_edge_join_to_peers_seconds" + suffix, frozenset()), samples)
        self.assertIn(("mf_edge_join_to_peers_seconds_bucket", frozenset({("le", "+Inf")})), samples)
        self.assertEqual(samples[("mf_edge_draining", frozenset())], 0)

    def test_admin_does_not_serve_websockets_or_other_paths(self):
        self.assertEqual(admin_get(self.edge.admin_port, "/nope").status, 404)


class CountersFollowActions(MetricsCase):
    def test_connections_joins_leaves_proposals(self):
        before = self.scrape()
        a, b = self.client(), self.client()
        self.client()  # a third, idle connection
        scrape = self.wait_for(lambda s: s.value("mf_edge_connections") == before.value("mf_edge_connections") + 3,
                               "mf_edge_connections must count the 3 open WebSockets")
        a.join("mx-1", "r", "p-mx-a")
        b.join("mx-1", "r", "p-mx-b")  # proposes a: 1 proposal
        b.need_peers()                 # proposes a again
        scrape = self.scrape()
        self.assertEqual(scrape.value("mf_edge_joins_total") - before.value("mf_edge_joins_total"), 2)
        self.assertEqual(scrape.value("mf_edge_peers_joined") - before.value("mf_edge_peers_joined"), 2)
        self.assertEqual(scrape.value("mf_edge_proposals_total") - before.value("mf_edge_proposals_total"), 2)
        self.assertGreaterEqual(scrape.value("mf_edge_stream_viewers", stream="mx-1"), 2)
        # Histogram: one observation per join that sent peers.
        count = scrape.value("mf_edge_join_to_peers_seconds_count")
        self.assertEqual(count - before.value("mf_edge_join_to_peers_seconds_count"), 2)
        self.assertGreater(scrape.value("mf_edge_join_to_peers_seconds_sum"),
                           before.value("mf_edge_join_to_peers_seconds_sum"))
        buckets = sorted(((float(dict(l)["le"]), v) for l, v in scrape.series("mf_edge_join_to_peers_seconds_bucket")
                          .items()), key=lambda x: x[0])
        self.assertGreaterEqual(len(buckets), 3)
        self.assertEqual(buckets[-1][0], float("inf"))
        self.assertEqual(buckets[-1][1], count, "le=+Inf equals _count")
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values), "buckets are cumulative")
        # leave and close.
        a.send({"type": "leave"})
        a.expect("left")
        scrape = self.wait_for(lambda s: s.value("mf_edge_leaves_total") - before.value("mf_edge_leaves_total") == 1,
                               "a leave counts in mf_edge_leaves_total")
        self.assertEqual(scrape.value("mf_edge_peers_joined") - before.value("mf_edge_peers_joined"), 1)
        b.close()
        scrape = self.wait_for(lambda s: s.value("mf_edge_leaves_total") - before.value("mf_edge_leaves_total") == 2
                               and s.value("mf_edge_peers_joined") == before.value("mf_edge_peers_joined"),
                               "closing a joined connection counts as a leave")
        self.wait_for(lambda s: s.value("mf_edge_connections") == before.value("mf_edge_connections") + 2,
                      "mf_edge_connections goes down when a connection closes")

    def test_signals_relayed_and_failed(self):
        before = self.scrape()
        a, b = self.client(), self.client()
        a.join("mx-sig", "r", "p-ms-a")
        b.join("mx-sig", "r2", "p-ms-b")
        for i in range(3):
            a.send({"type": "signal", "to": "p-ms-b", "kind": "candidate", "data": i})
            b.expect("signal")
        a.send({"type": "signal", "to": "p-ms-ghost", "kind": "offer", "data": 0})
        self.assertEqual(a.recv().get("code"), "peer-not-found")
        scrape = self.scrape()
        self.assertEqual(scrape.value("mf_edge_signals_relayed_total") - before.value("mf_edge_signals_relayed_total"), 3)
        self.assertEqual(scrape.value("mf_edge_signals_failed_total") - before.value("mf_edge_signals_failed_total"), 1)
        self.assertEqual(scrape.value("mf_edge_errors_total", code="peer-not-found")
                         - before.value("mf_edge_errors_total", code="peer-not-found"), 1)

    def test_stats_aggregated_per_stream(self):
        before = self.scrape()
        a, b, other = self.client(), self.client(), self.client()
        a.join("mx-stats", "r1", "p-st-a")
        b.join("mx-stats", "r2", "p-st-b")
        other.join("mx-stats-other", "r1", "p-st-o")
        a.send({"type": "stats", "p2pBytes": 1000, "cdnBytes": 500, "uploadedBytes": 200})
        a.send({"type": "stats", "p2pBytes": 1500, "cdnBytes": 700, "uploadedBytes": 300})
        b.send({"type": "stats", "p2pBytes": 100, "cdnBytes": 100, "uploadedBytes": 100})
        a.send({"type": "stats", "p2pBytes": 50, "cdnBytes": 700, "uploadedBytes": 300})  # p2p restarted
        other.send({"type": "stats", "p2pBytes": 7, "cdnBytes": 9000000, "uploadedBytes": 0})
        want = {"p2p": 1500 + 100 + 50, "cdn": 700 + 100}

        def done(s):
            return (s.get("mf_edge_stream_p2p_bytes_total", stream="mx-stats") == want["p2p"]
                    and s.get("mf_edge_stream_cdn_bytes_total", stream="mx-stats") == want["cdn"]
                    and s.get("mf_edge_stream_cdn_bytes_total", stream="mx-stats-other") == 9000000)
        scrape = self.wait_for(done, f"per-stream bytes of mx-stats must be p2p {want['p2p']}, cdn {want['cdn']} "
                                     "(a lower value restarts the counter)")
        self.assertEqual(scrape.value("mf_edge_stream_viewers", stream="mx-stats"), 2)
        self.assertEqual(scrape.value("mf_edge_stream_viewers", stream="mx-stats-other"), 1)
        self.assertEqual(scrape.value("mf_edge_p2p_bytes_total") - before.value("mf_edge_p2p_bytes_total"),
                         want["p2p"] + 7)
        self.assertEqual(scrape.value("mf_edge_cdn_bytes_total") - before.value("mf_edge_cdn_bytes_total"),
                         want["cdn"] + 9000000)
        self.assertEqual(scrape.value("mf_edge_uploaded_bytes_total") - before.value("mf_edge_uploaded_bytes_total"),
                         300 + 100)
        # After the viewers leave, the gauge drops.
        a.close()
        self.wait_for(lambda s: s.get("mf_edge_stream_viewers", stream="mx-stats") in (1, None),
                      "mf_edge_stream_viewers after a viewer left")


class DescriptorTables(MetricsCase):
    ARGS = ("--max-connections-per-shard", "300")

    def test_each_shard_reports_its_table_size_and_slots_held(self):
        def used(scrape):
            return {dict(l)["shard"]: v for l, v in scrape.series("mf_edge_descriptor_table_used").items()}
        before = self.scrape()
        slots = {dict(l)["shard"]: v for l, v in before.series("mf_edge_descriptor_table_slots").items()}
        self.assertEqual(slots, {"0": 300, "1": 300})
        # The scrape's own admin connection holds a slot of shard 0.
        self.assertGreaterEqual(used(before)["0"], 1)
        clients = [self.client() for _ in range(3)]
        scrape = self.wait_for(lambda s: s.value("mf_edge_connections") == before.value("mf_edge_connections") + 3,
                               "the 3 WebSockets are open")
        # Every open WebSocket holds a slot of its shard's table.
        self.assertGreaterEqual(sum(used(scrape).values()), scrape.value("mf_edge_connections") + 1)
        for c in clients:
            c.close()
        self.wait_for(lambda s: s.value("mf_edge_connections") == before.value("mf_edge_connections")
                      and sum(used(s).values()) < scrape.value("mf_edge_connections") + 1,
                      "closed connections give their slots back")


class ForgedStats(MetricsCase):
    """One peer cannot forge a stream's offload: its `stats` are credited at
    most 1 Gbit/s times its time joined (plus 1 s), totals saturate instead
    of wrapping at 2^64, and the edge-wide counters never go down
    (docs/protocol.md, `stats`)."""

    def test_forged_totals_are_bounded_and_counters_never_decrease(self):
        honest, forger = self.client(), self.client()
        honest.join("mx-forged", "r1", "p-fg-honest")
        forger.join("mx-forged", "r1", "p-fg-forger")
        before = self.scrape()
        honest.send({"type": "stats", "p2pBytes": 0, "cdnBytes": 100_000_000})
        top = 2 ** 64 - 1
        # Past 2^64 twice over, with a restart in between: wrapped, the sum
        # went down; unbounded, the ratio went to 0.99999.
        for value in (top, 0, top, top // 2, top):
            forger.send({"type": "stats", "p2pBytes": value, "uploadedBytes": value, "id": "s"})
        forger.send({"type": "ping", "t": 1})
        self.assertEqual(forger.expect("pong"), {"type": "pong", "t": 1})  # every stats above was processed
        after = self.wait_for(lambda s: s.get("mf_edge_stream_cdn_bytes_total", stream="mx-forged") == 100_000_000,
                              "the honest peer's stats credited")
        self.assertGreater(after.value("mf_edge_stats_clamped_total"), before.value("mf_edge_stats_clamped_total"))
        for name in ("mf_edge_p2p_bytes_total", "mf_edge_cdn_bytes_total", "mf_edge_uploaded_bytes_total"):
            self.assertGreaterEqual(after.value(name), before.value(name), name)
        p2p = after.value("mf_edge_stream_p2p_bytes_total", stream="mx-forged")
        # Bounded by the forger's time joined: far below 2^63 for any run of
        # this test (it would take 2,300 years at 1 Gbit/s).
        self.assertLess(p2p, 2 ** 63)
        self.assertGreater(p2p, 0)
        streams = json.loads(admin_get(self.edge.admin_port, "/api/streams").body)
        stream = next(x for x in streams["streams"] if x["streamId"] == "mx-forged")
        # 100 MB from the CDN against at most 125 MB/s times the time joined:
        # below 0.999 unless the forger stayed joined for 13 minutes.
        self.assertLess(stream["offloadRatio"], 0.999, stream)
        # The stream's series and the totals keep counting after it ends.
        honest.close()
        forger.close()
        self.wait_for(lambda s: s.get("mf_edge_stream_viewers", stream="mx-forged") is None, "the stream ended")
        final = self.scrape()
        for name in ("mf_edge_p2p_bytes_total", "mf_edge_cdn_bytes_total", "mf_edge_uploaded_bytes_total"):
            self.assertGreaterEqual(final.value(name), after.value(name), name)


class ErrorCounters(MetricsCase):
    @classmethod
    def setUpClass(cls):
        policy = write_run_file("policy.json", json.dumps({"streams": {"mxe-full": {"maxViewers": 1},
                                                                       "mxe-dark": {"meshEnabled": False}}}))
        cls.ARGS = ("--policy", policy)
        super().setUpClass()

    def test_every_error_code_counted(self):
        before = self.scrape()
        c = self.client()
        c.send("not json"); c.recv()
        c.send('{"type":"join"}'); c.recv()
        c.send('{"type":"teleport"}'); c.recv()
        c.send('{"type":"need-peers"}'); c.recv()
        holder = self.client()
        holder.join("mxe-full", "r", "p-mxe-holder")
        c.send({"type": "join", "streamId": "mxe-other", "rendition": "r", "peerId": "p-mxe-holder"}); c.recv()
        c.send({"type": "join", "streamId": "mxe-full", "rendition": "r", "peerId": "p-mxe-c"})
        self.assertEqual(c.recv().get("code"), "stream-full")
        c.join("mxe-dark", "r", "p-mxe-c", expect_peers=False)
        c.send({"type": "need-peers"}); self.assertEqual(c.recv().get("code"), "mesh-disabled")
        j = self.client()
        j.join("mxe-lit", "r", "p-mxe-j")
        j.send({"type": "signal", "to": "nobody", "kind": "offer", "data": 1}); j.recv()
        flood = self.client()
        flood.ws.send(b"".join(encode_frame(1, '{"type":"ping"}') for _ in range(103)))
        limited = sum(1 for _ in range(103) if flood.recv().get("type") == "error")
        self.assertGreaterEqual(limited, 1)
        scrape = self.scrape()
        expected = {code: 1 for code in ERROR_CODES}
        expected["rate-limited"] = limited
        for code, n in expected.items():
            with self.subTest(code=code):
                delta = scrape.value("mf_edge_errors_total", code=code) - before.value("mf_edge_errors_total", code=code)
                self.assertEqual(delta, n, f'mf_edge_errors_total{{code="{code}"}}')


class TlsCounters(MetricsCase):
    TLS = True
    SHARDS = 1

    def test_tls_handshakes_and_failures(self):
        before = self.scrape()
        for _ in range(2):
            c = SdkClient(self.edge)
            self.assertEqual(c.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})
            c.close()
        raw = socket.create_connection((self.edge.host, self.edge.port), timeout=EXPECT_TIMEOUT_S)
        raw.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello" * 2)
        raw.settimeout(3)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
        raw.close()
        scrape = self.wait_for(
            lambda s: s.value("mf_edge_tls_handshake_failures_total") > before.value("mf_edge_tls_handshake_failures_total"),
            "a broken TLS handshake counts in mf_edge_tls_handshake_failures_total")
        self.assertGreaterEqual(scrape.value("mf_edge_tls_handshakes_total") - before.value("mf_edge_tls_handshakes_total"), 2)


class DrainingGauge(unittest.TestCase):
    def test_draining_is_1_while_draining(self):
        edge = AdminEdge(args=["--drain-ms", "1500", "--config", edge_config_file(UNLIMITED_SOURCE)], shards=1)
        edge.start()
        try:
            c = SdkClient(edge)
            samples, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
            self.assertEqual(samples[("mf_edge_draining", frozenset())], 0)
            edge.send_signal(signal.SIGTERM)
            c.expect("reconnect")
            samples, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
            self.assertEqual(samples[("mf_edge_draining", frozenset())], 1)
            c.close()
            self.assertEqual(edge.wait_exit(5), 0)
        finally:
            edge.kill()


if __name__ == "__main__":
    unittest.main()
