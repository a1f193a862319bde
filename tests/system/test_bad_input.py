"""Bad input on some connections never harms the others."""

import json
import random
import socket
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, Edge, RawWebSocket, http_exchange, wait_readable_or_eof

SEED = 20240611


class BadInput(unittest.TestCase):
    def check(self, tls):
        rng = random.Random(SEED)
        with Edge(shards=2, tls=tls) as edge:
            good = RawWebSocket.connect(edge)
            self.addCleanup(good.close)
            good.send_text('{"type":"ping","t":"before"}')
            self.assertEqual(json.loads(good.recv_message()), {"type": "pong", "t": "before"})

            bad = []
            try:
                for _ in range(50):  # garbage after a valid upgrade
                    ws = RawWebSocket.connect(edge)
                    bad.append(ws.sock)
                    ws.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
                for _ in range(50):  # garbage instead of an HTTP request
                    sock = edge.connect(timeout=EXPECT_TIMEOUT_S)
                    bad.append(sock)
                    sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
                # Let the edge chew on it; collect the connections it closes.
                if not tls:
                    wait_readable_or_eof(bad, 1.0)
                else:
                    time.sleep(0.5)
                self.assertTrue(edge.alive(), f"mf-edge died on garbage:\n{edge.stderr_tail()}")
                good.send_text('{"type":"ping","t":"during"}')
                self.assertEqual(json.loads(good.recv_message()), {"type": "pong", "t": "during"})
            finally:
                for sock in bad:
                    try:
                        sock.close()
                    except OSError:
                        pass
            time.sleep(0.1)
            good.send_text('{"type":"ping","t":"after"}')
            self.assertEqual(json.loads(good.recv_message()), {"type": "pong", "t": "after"})
            response = http_exchange(edge, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(response.status, 200)
            fresh = RawWebSocket.connect(edge)
            try:
                fresh.send_text('{"type":"ping","t":"fresh"}')
                self.assertEqual(json.loads(fresh.recv_message()), {"type": "pong", "t": "fresh"})
            finally:
                fresh.close()
                good.close()

    def test_garbage_plain(self):
        self.check(tls=False)

    def test_garbage_tls(self):
        self.check(tls=True)


if __name__ == "__main__":
    unittest.main()
