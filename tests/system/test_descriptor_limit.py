"""Connections are direct descriptors of each shard's ring: with
RLIMIT_NOFILE 256 and 2 shards the edge holds more than 256 connections."""

import json
import os
import unittest

from edge_process import EXPECT_TIMEOUT_S, AdminEdge, RawWebSocket, encode_frame, lower_nofile, wait_until, OP_TEXT

CONNECTIONS = 384


class DescriptorLimit(unittest.TestCase):
    def test_more_connections_than_rlimit_nofile(self):
        with AdminEdge(shards=2, preexec_fn=lower_nofile(256)) as edge:
            self.assertRegex(edge.stderr_text(), r"256 connections per shard",
                             "the edge did not size its tables from the lowered RLIMIT_NOFILE")
            with open(f"/proc/{edge.process.pid}/limits") as f:
                limits = f.read()
            self.assertRegex(limits, r"Max open files\s+256\s+256", "preexec_fn did not lower the limit")

            clients = []
            try:
                for i in range(CONNECTIONS):
                    clients.append(RawWebSocket.connect(edge, timeout=EXPECT_TIMEOUT_S))
                for i, ws in enumerate(clients):
                    ws.send(encode_frame(OP_TEXT, json.dumps({"type": "ping", "t": i})))
                for i, ws in enumerate(clients):
                    self.assertEqual(json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S)), {"type": "pong", "t": i},
                                     f"connection {i}")
                # All pongs arrived while every connection was open: one more
                # round on all of them proves none was dropped meanwhile.
                for i, ws in enumerate(clients):
                    ws.send(encode_frame(OP_TEXT, json.dumps({"type": "ping", "t": -i})))
                for i, ws in enumerate(clients):
                    self.assertEqual(json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S)), {"type": "pong", "t": -i})
                fds = len(os.listdir(f"/proc/{edge.process.pid}/fd"))
                self.assertLess(fds, 256, "the edge's regular descriptor table must stay small")
            finally:
                for ws in clients:
                    ws.close()
            self.assertEqual(len(clients), CONNECTIONS)

            # The slots are released (the edge counts no connection any
            # more): new connections work, more than once around each table.
            wait_until(lambda: edge.metric("mf_edge_connections") == 0, what="every connection released")
            for round_ in range(2):
                batch = [RawWebSocket.connect(edge) for _ in range(CONNECTIONS)]
                try:
                    for i, ws in enumerate(batch):
                        ws.send_text(json.dumps({"type": "ping", "t": [round_, i]}))
                    for i, ws in enumerate(batch):
                        self.assertEqual(json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S)), {"type": "pong", "t": [round_, i]})
                finally:
                    for ws in batch:
                        ws.close()
                wait_until(lambda: edge.metric("mf_edge_connections") == 0, what="every connection released")
            ws = RawWebSocket.connect(edge)
            try:
                ws.send_text('{"type":"ping","t":"after"}')
                self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "after"})
            finally:
                ws.close()


if __name__ == "__main__":
    unittest.main()
