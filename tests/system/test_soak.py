"""The bounded soak (docs/benchmarks.md): mf-load's soak scenario for 20 s against a
real mf-edge, relay in open loop with join/leave churn, sampling the edge's
RSS and descriptors every 2 s. After the warm-up (the first quarter) RSS must
stay flat and descriptors must not grow. The long run (30 minutes) is in
perf/README.md."""

import unittest

from edge_process import Edge
from test_abuse import MEMORY_SCALE
from test_mf_load import BUDGET, mf_load


class Soak(unittest.TestCase):
    def test_bounded_soak_keeps_rss_and_descriptors_flat(self):
        seconds, churn, rate = 20, 20, 400
        with Edge(args=BUDGET, shards=2) as edge:
            report = mf_load("soak", "--url", edge.ws_url(), "--connections", "200", "--duration", str(seconds),
                             "--rate", str(rate), "--churn-rate", str(churn), "--sample-every", "2",
                             "--pid", str(edge.process.pid), timeout=seconds + 60)
        soak = report["soak"]
        samples = soak["samples"]
        self.assertGreaterEqual(len(samples), seconds // 2, soak)
        self.assertEqual(report["errors"], {}, report)
        # Churn happened: pairs left and joined again, and signals flowed all along.
        rejoins = samples[-1]["rejoins"]
        self.assertGreater(rejoins, churn * seconds, soak)
        self.assertTrue(all(b["signals"] > a["signals"] for a, b in zip(samples, samples[1:])), samples)
        self.assertTrue(all(s["open"] >= 200 - 2 * churn for s in samples), samples)
        # Bounded: after the warm-up, RSS grows by less than 2 MiB and no
        # descriptor leaks (the edge's sockets live in the ring's table).
        self.assertLess(soak["rssGrowthKb"], 2048 * MEMORY_SCALE, soak)
        self.assertLessEqual(soak["descriptorGrowth"], 0, soak)
        rss = [s["rssKb"] for s in samples]
        print(f"soak: {seconds} s, 200 peers, relay {rate}/s, churn {churn} pairs/s ({rejoins} rejoins): "
              f"edge RSS {rss[0] / 1024:.1f} -> {rss[-1] / 1024:.1f} MiB, {soak['rssGrowthKb']:+d} KiB after the "
              f"warm-up (t >= {soak['warmupEndSeconds']:.0f} s), descriptors {samples[0]['descriptors']} -> "
              f"{samples[-1]['descriptors']}", flush=True)


if __name__ == "__main__":
    unittest.main()
