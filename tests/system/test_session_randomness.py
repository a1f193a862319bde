"""A `session` is the identity's only secret (docs/protocol.md section 5): the edge
makes it from the CSPRNG or not at all. With the test hook that makes the
CSPRNG refuse (MF_TEST_NO_SESSION_RANDOMNESS, builds with -Dtest_hooks=true),
a join gets no `joined` (no session from a fallback generator): the
connection is closed 1011, the refusal is counted, and no peerId stays
claimed."""

import os
import unittest

from build_options import needs_test_hooks
from edge_process import EXPECT_TIMEOUT_S, AdminEdge, SdkClient
from test_abandoned_joins import gauges, join_message


@needs_test_hooks
class SessionRandomness(unittest.TestCase):
    def test_join_without_cryptographic_randomness_is_refused(self):
        os.environ["MF_TEST_NO_SESSION_RANDOMNESS"] = "1"
        self.addCleanup(os.environ.pop, "MF_TEST_NO_SESSION_RANDOMNESS", None)
        with AdminEdge(shards=2, edge_id="edge-no-random") as edge:
            c = SdkClient(edge)
            self.addCleanup(c.close)
            c.send(join_message("s-random", "p-random"))
            code, before = c.expect_close(timeout=EXPECT_TIMEOUT_S)
            self.assertEqual(code, 1011)
            self.assertEqual(before, [], "nothing (no joined, no session) before the close")
            g = gauges(edge)
            self.assertEqual(g["mf_edge_sessions_refused_total"], 1)
            self.assertEqual(g["mf_edge_peer_claims"], 0)
            self.assertEqual(g["mf_edge_joins_total"], 0)


if __name__ == "__main__":
    unittest.main()
