"""The relay path allocates nothing per signal in steady state
(docs/architecture.md, "The relay path"): a test build of mf-edge counts
every heap allocation of the process (common/base/counting_allocator.cc, exported
as mf_edge_test_heap_allocations_total), and pairs of peers relay signals
back and forth, over plain WebSocket and over TLS, on two shards.

The count is read from /metrics, as it stood when the request arrived; a
scrape allocates too: the test scrapes twice with nothing in between (the
scrape's own cost, the same for the same state), relays, scrapes again, and
takes the difference of the differences."""

import unittest

from build_options import needs_test_hooks
from edge_process import AdminEdge, admin_get, edge_config_file, joined_pair, parse_prometheus

PAIRS = 4
WARM_UP_ROUND_TRIPS = 200  # per pair: every buffer, pool and table reaches its steady size
MEASURED_ROUND_TRIPS = 800  # per pair: 2 signals each
# Allowed allocations per relayed signal, in total over the measured signals.
# None is the goal and what a debugger sees in steady state; what lands in
# the window comes from the scrapes around it (each a new admin connection,
# whose cost moves by tens between scrapes). One allocation per signal would
# be 6,400; before the packets were recycled it was about 3 per signal.
ALLOWED_PER_SIGNAL = 0.05
LIMITS = {"messages_per_second": 100000, "message_burst": 100000, "per_source_connections": 0,
          "per_source_rate": 0}
DATA = '{"type":"offer","sdp":"' + "v=0 o=- 4611731400430051336 2 IN IP4 127.0.0.1 " * 4 + '"}'


def signal_text(to, data):
    return '{"type":"signal","to":"' + to + '","kind":"offer","data":' + data + "}"


@needs_test_hooks
class RelayAllocations(unittest.TestCase):
    def scrape(self, edge):
        response = admin_get(edge.admin_port, "/metrics")
        samples, _ = parse_prometheus(response.body.decode())
        counted = samples.get(("mf_edge_test_heap_allocations_total", frozenset()))
        self.assertIsNotNone(counted, "the test build counts allocations (test hooks, no sanitizer)")
        return counted, samples[("mf_edge_signals_relayed_total", frozenset())]

    def relay(self, pairs, round_trips):
        for _ in range(round_trips):
            for a, pa, b, pb in pairs:
                a.send(signal_text(pb, DATA))
                b.recv_raw()
                b.send(signal_text(pa, DATA))
                a.recv_raw()

    def check(self, tls):
        with AdminEdge(args=["--config", edge_config_file(LIMITS), "--heartbeat-ms", "600000"], shards=2,
                       tls=tls) as edge:
            pairs = []
            for _ in range(PAIRS):
                pairs.append(joined_pair(self, edge, "alloc"))
            self.relay(pairs, WARM_UP_ROUND_TRIPS)
            first, _ = self.scrape(edge)
            second, relayed_before = self.scrape(edge)
            self.relay(pairs, MEASURED_ROUND_TRIPS)
            third, relayed_after = self.scrape(edge)
            signals = relayed_after - relayed_before
            self.assertEqual(signals, PAIRS * MEASURED_ROUND_TRIPS * 2)
            scrape_cost = second - first
            relay_cost = (third - second) - scrape_cost
            print(f"\n{'wss' if tls else 'ws'}: {relay_cost:.0f} allocations over {signals:.0f} relayed signals "
                  f"(a scrape: {scrape_cost:.0f})")
            self.assertLessEqual(relay_cost, signals * ALLOWED_PER_SIGNAL,
                                 f"{relay_cost / signals:.2f} heap allocations per relayed signal")

    def test_plain(self):
        self.check(tls=False)

    def test_tls(self):
        self.check(tls=True)


if __name__ == "__main__":
    unittest.main()
