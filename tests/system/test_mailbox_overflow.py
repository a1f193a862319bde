"""Cross-shard obligations are never dropped (docs/architecture.md,
"Mailboxes"): with every mailbox shrunk to 2 messages (test hook
MF_TEST_MAILBOX_CAPACITY, builds with -Dtest_hooks=true) and 4 shards, a
flood of connections that join, leave, leave in the same segment as their
join, or reset, makes the mailboxes refuse (mf_edge_obligations_deferred_total
> 0). Requests may then be refused to their client (a close, an error), but
every release, leave, verdict and reply still arrives: afterwards no peerId is
claimed, no peer is joined or proposed, every per-source count is back to 0,
and every peerId of the run can be joined again."""

import os
import unittest

from build_options import needs_test_hooks
from edge_process import EXPECT_TIMEOUT_S, AdminEdge, wait_until, PeerClosed, SdkClient, edge_config_file, peer_ids
from test_abandoned_joins import abort, drain, frame, gauges, join_message
from test_cross_edge import tag

SOURCE_LIMITS = {"per_source_connections": 100000, "per_source_rate": 100000, "per_source_burst": 100000}


def joined_retrying(edge, stream, peer):
    """A joined client. With 2-message mailboxes even an idle edge may refuse
    a request (503 at the upgrade, 1011 "edge busy" on a join): those are
    refusals to the client, asked again; `peer-id-taken` is not."""
    for _ in range(50):
        try:
            c = SdkClient(edge)
        except AssertionError as e:
            if "503" not in str(e):
                raise
            continue
        try:
            joined, peers = c.join(stream, "r1", peer)
            return c, joined, peers
        except (AssertionError, PeerClosed, OSError) as e:
            c.close()
            if "peer-id-taken" in str(e):
                raise
    raise AssertionError(f"{peer}: no join within 50 attempts")


@needs_test_hooks
class MailboxOverflow(unittest.TestCase):
    def test_full_mailboxes_lose_no_release_leave_or_verdict(self):
        os.environ["MF_TEST_MAILBOX_CAPACITY"] = "2"
        self.addCleanup(os.environ.pop, "MF_TEST_MAILBOX_CAPACITY", None)
        args = ["--config", edge_config_file(SOURCE_LIMITS), "--messages-per-second", "5000", "--message-burst", "5000"]
        with AdminEdge(args=args, shards=4, edge_id="edge-overflow") as edge:
            stream = f"ov-{tag()}"
            peers = [f"ov-{tag()}-{i}" for i in range(48)]
            for round_ in range(3):
                clients = []
                for i, peer in enumerate(peers):
                    try:
                        c = SdkClient(edge)
                    except (AssertionError, OSError):
                        continue  # the upgrade refused (edge busy): a request, refused to its client
                    data = frame(join_message(stream, peer))
                    if (i + round_) % 3 == 0:
                        data += frame({"type": "leave"})
                    c.ws.send(data + frame({"type": "need-peers", "count": 64}))
                    clients.append((i, c))
                for i, c in clients:
                    drain(c)
                    if (i + round_) % 3 == 1:
                        try:
                            c.send({"type": "leave"})
                        except OSError:
                            pass
                for i, c in clients:
                    abort(c)

            def settled():
                g = gauges(edge)
                return (g["mf_edge_peer_claims"] == 0 and g["mf_edge_peers_joined"] == 0
                        and g["mf_edge_source_open_connections"] == 0 and g["mf_edge_obligations_waiting"] == 0)

            wait_until(settled, EXPECT_TIMEOUT_S, what="every claim, seat, source count and waiting obligation settled")
            g = gauges(edge)
            self.assertGreater(g["mf_edge_obligations_deferred_total"], 0, "the mailboxes never refused: no test")
            self.assertEqual(g["mf_edge_obligation_anomalies_total"], 0)

            # Nobody who left is proposed, and every peerId is free again.
            watcher, _, first = joined_retrying(edge, stream, f"watch-{tag()}")
            self.addCleanup(watcher.close)
            self.assertEqual(peer_ids(first), [])
            for peer in peers:
                c, joined, _ = joined_retrying(edge, stream, peer)
                self.assertEqual(joined["peerId"], peer)
                c.send({"type": "leave"})
                c.expect("left")
                c.close()
            wait_until(lambda: gauges(edge)["mf_edge_peer_claims"] == 1, EXPECT_TIMEOUT_S, what="only the watcher's claim left")


if __name__ == "__main__":
    unittest.main()
