"""Stopping mf-edge: SIGTERM / SIGINT close every WebSocket with 1001 and the
process exits 0 within 5 s."""

import json
import signal
import socket
import time
import unittest

from edge_process import OP_CLOSE, Edge, RawWebSocket, close_payload


class Stop(unittest.TestCase):
    def open_clients(self, edge, count):
        clients = []
        for i in range(count):
            ws = RawWebSocket.connect(edge)
            self.addCleanup(ws.close)
            ws.send_text(json.dumps({"type": "ping", "t": i}))
            self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": i})
            clients.append(ws)
        return clients

    def check_stop(self, sig, tls=False, clients=2, answer_close=True, handshaking=0):
        with Edge(shards=2, tls=tls) as edge:
            websockets = self.open_clients(edge, clients)
            half_open = []
            for _ in range(handshaking):
                s = socket.create_connection((edge.host, edge.port), timeout=3)
                self.addCleanup(s.close)
                s.sendall(b"GET /ws HTTP/1.1\r\n")
                half_open.append(s)
            time.sleep(0.05)
            started = time.monotonic()
            edge.send_signal(sig)
            for ws in websockets:
                code, before = ws.expect_close(timeout=3.0, allow_messages=True)
                self.assertEqual(code, 1001, f"close code on {signal.Signals(sig).name}")
                for frame in before:
                    # Only a `reconnect` message may precede the close (spec section 4).
                    self.assertEqual(json.loads(frame.payload).get("type"), "reconnect", repr(frame))
                if answer_close:
                    ws.send_frame(OP_CLOSE, close_payload(1001))
                closed, _ = ws.wait_eof(3.0)
                self.assertTrue(closed, "TCP not closed after the 1001 close frame")
                if answer_close:
                    ws.close()  # a well-behaved client closes its side too
            code = edge.wait_exit(5.0)
            took = time.monotonic() - started
            self.assertEqual(code, 0, f"exit status after {signal.Signals(sig).name}:\n{edge.stderr_tail()}")
            self.assertLess(took, 5.0)
            return took

    def test_sigterm_two_clients(self):
        # Three rounds: a race in the shutdown path shows up only sometimes.
        for round_ in range(3):
            with self.subTest(round=round_):
                self.check_stop(signal.SIGTERM)

    def test_sigterm_sends_reconnect_before_1001(self):
        # Spec section 7: 1001 = "edge going away (drain or shutdown), after
        # `reconnect`"; section 4: `reconnect` carries afterMs (int).
        with Edge(shards=1) as edge:
            ws = self.open_clients(edge, 1)[0]
            edge.send_signal(signal.SIGTERM)
            code, before = ws.expect_close(timeout=3.0, allow_messages=True)
            self.assertEqual(code, 1001)
            messages = [json.loads(frame.payload) for frame in before]
            self.assertEqual([m.get("type") for m in messages], ["reconnect"],
                             "exactly one `reconnect` message must precede the 1001 close")
            self.assertIsInstance(messages[0].get("afterMs"), int)
            self.assertEqual(edge.wait_exit(5.0), 0)

    def test_sigterm_two_clients_tls(self):
        self.check_stop(signal.SIGTERM, tls=True)

    def test_sigterm_clients_that_never_answer(self):
        self.check_stop(signal.SIGTERM, answer_close=False, handshaking=2)

    def test_sigint(self):
        self.check_stop(signal.SIGINT, clients=1)

    def test_sigterm_idle(self):
        with Edge(shards=2) as edge:
            code, took = edge.stop(signal.SIGTERM)
            self.assertEqual(code, 0, edge.stderr_tail())
            self.assertLess(took, 2.0)


if __name__ == "__main__":
    unittest.main()
