"""Signal packets finished on a shard other than their home go back in
batches (edge/signal_packet_pool.h, docs/architecture.md "The relay path"):
a batch not yet full leaves on a timer that is armed only while a batch
waits. An idle edge of several shards never runs it (before, every shard woke
for it 100 times a second), and a waiting batch always reaches home (it is an
obligation: every packet batched is returned).

The edge's clock is a ManualClock: the timer can run only when the test moves
it. "Settled" reads /metrics twice: each shard answers the second scrape in a
loop turn after the one in which it answered the first, so any timer due at
the moved clock has run by then (docs/architecture.md, "Testing without
wall-clock margins")."""

import random
import unittest

from build_options import needs_test_hooks
from edge_process import AdminEdge, ManualClock, SdkClient, edge_config_file

LIMITS = {"messages_per_second": 100000, "message_burst": 100000, "per_source_connections": 0,
          "per_source_rate": 0}
MAX_PAIRS = 24  # pairs tried until one spans both shards (each does with probability 1/2)
DATA = '{"type":"offer","sdp":"v=0"}'


def signal_text(to):
    return '{"type":"signal","to":"' + to + '","kind":"offer","data":' + DATA + "}"


@needs_test_hooks
class SignalReturnTimer(unittest.TestCase):
    def settled(self, edge):
        edge.metrics()
        samples = edge.metrics()
        return {name: samples[(f"mf_edge_{name}_total", frozenset())]
                for name in ("signal_return_timer_runs", "signal_packets_batched", "signal_packets_returned",
                             "signals_relayed")}

    def test_idle_shards_never_run_it_and_every_waiting_batch_goes_home(self):
        with ManualClock() as clock, AdminEdge(args=["--config", edge_config_file(LIMITS), "--heartbeat-ms",
                                                     "600000"], shards=2) as edge:
            # Idle: seconds pass, the timer never runs.
            for _ in range(3):
                clock.advance(1000)
                self.assertEqual(self.settled(edge)["signal_return_timer_runs"], 0,
                                 "an idle shard ran the signal return timer")

            # Signals until a packet is finished on the shard that is not its
            # home (a pair split over both shards); the clock stands still.
            pairs = 0
            relayed = 0
            clients = []
            try:
                while True:
                    self.assertLess(pairs, MAX_PAIRS, "no pair spanned both shards")
                    pairs += 1
                    tag = f"ret-{random.randrange(1 << 30)}"
                    a, b = SdkClient(edge), SdkClient(edge)
                    clients += [a, b]
                    a.join(tag, "r1", f"{tag}-a")
                    b.join(tag, "r1", f"{tag}-b")
                    a.quiet(0.05)  # a `peers` update may follow b's join
                    a.send(signal_text(f"{tag}-b"))
                    b.expect("signal")
                    relayed += 1
                    now = self.settled(edge)
                    self.assertEqual(now["signals_relayed"], relayed)
                    if now["signal_packets_batched"] > 0:
                        break
                # Fewer packets than a full batch: they wait for the timer.
                self.assertEqual(now["signal_packets_returned"], 0)
                self.assertEqual(now["signal_return_timer_runs"], 0)

                # 10 ms later the timer has run once and every batched packet is home.
                clock.advance(10)
                now = self.settled(edge)
                self.assertEqual(now["signal_return_timer_runs"], 1)
                self.assertEqual(now["signal_packets_returned"], now["signal_packets_batched"])

                # Nothing waits any more: idle again, the timer stays off.
                for _ in range(3):
                    clock.advance(1000)
                    self.assertEqual(self.settled(edge)["signal_return_timer_runs"], 1,
                                     "the timer ran again with no batch waiting")
            finally:
                # The stop waits for every connection's goodbye: closed
                # here, while the edge runs.
                for client in clients:
                    client.close()
            clock.release()


if __name__ == "__main__":
    unittest.main()
