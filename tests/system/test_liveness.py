"""Liveness (spec section 7): server pings after heartbeatMs without traffic,
close 4002 after 2.5 x heartbeatMs without any frame."""

import json
import time
import unittest

from edge_process import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Edge, RawWebSocket, encode_frame

HEARTBEAT_MS = 300


class Liveness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.edge = Edge(shards=2, args=["--heartbeat-ms", str(HEARTBEAT_MS)])
        cls.edge.start()

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)

    def ws(self):
        ws = RawWebSocket.connect(self.edge)
        self.addCleanup(ws.close)
        return ws

    def test_silent_client_gets_ping_then_close_4002(self):
        ws = self.ws()
        started = time.monotonic()
        frame = ws.recv_frame(timeout=3.0)
        pinged_after = time.monotonic() - started
        self.assertEqual(frame.opcode, OP_PING, f"expected a server ping, got {frame!r}")
        self.assertFalse(frame.masked)
        self.assertTrue(0.2 <= pinged_after <= 1.5, f"ping after {pinged_after:.3f} s, heartbeat is 0.3 s")
        code, seen = ws.expect_close(timeout=4.0)
        closed_after = time.monotonic() - started
        self.assertEqual(code, 4002, "idle timeout close code")
        self.assertTrue(0.5 <= closed_after <= 3.0, f"close after {closed_after:.3f} s, expected about 0.75 s")
        closed, extra = ws.wait_eof(3.0)
        self.assertTrue(closed, "TCP not closed after the 4002 close frame")
        self.assertEqual(extra, b"")

    def test_client_answering_pings_stays_connected(self):
        ws = self.ws()
        pings = 0
        deadline = time.monotonic() + 2.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                frame = ws.recv_frame(timeout=left)
            except TimeoutError:
                break
            self.assertNotEqual(frame.opcode, 0x8, f"closed while answering pings: code {frame.close_code}")
            self.assertEqual(frame.opcode, OP_PING, f"unexpected {frame!r}")
            pings += 1
            ws.send_frame(OP_PONG, frame.payload)
        self.assertGreaterEqual(pings, 2, "the heartbeat should have pinged repeatedly in 2 s")
        ws.send_text('{"type":"ping","t":"alive"}')
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "alive"})

    def test_client_traffic_suppresses_server_pings(self):
        ws = self.ws()
        server_pings = 0
        deadline = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < deadline:
            ws.send_frame(OP_TEXT, json.dumps({"type": "ping", "t": i}))
            while True:
                frame = ws.recv_frame(timeout=2.0)
                if frame.opcode == OP_PING:
                    server_pings += 1
                    ws.send_frame(OP_PONG, frame.payload)
                    continue
                self.assertEqual(frame.opcode, OP_TEXT, f"unexpected {frame!r}")
                self.assertEqual(json.loads(frame.payload), {"type": "pong", "t": i})
                break
            i += 1
            time.sleep(0.1)
        self.assertEqual(server_pings, 0, "pinged although the client sent a message every 100 ms")

    def test_client_pings_count_as_traffic(self):
        # WebSocket pings from the client are traffic too: no idle close.
        ws = self.ws()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            ws.send_frame(OP_PING, b"c")
            frame = ws.recv_frame(timeout=2.0)
            while frame.opcode == OP_PING:
                ws.send_frame(OP_PONG, frame.payload)
                frame = ws.recv_frame(timeout=2.0)
            self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"c"))
            time.sleep(0.1)
        ws.send_text('{"type":"ping","t":2}')
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 2})

    def test_bytes_of_an_unfinished_frame_are_not_liveness(self):
        # Liveness counts frames (spec section 7, "without any frame"): a
        # client that trickles one byte of a frame that never ends, far more
        # often than the idle close, is still closed with 4002. Before the
        # fix every byte counted and this loop never saw a close. The loop
        # ends on the close itself (or after 300 bytes, 30 s, which fails).
        ws = self.ws()
        frame = encode_frame(OP_TEXT, b"a" * 4000)
        ws.sock.sendall(frame[:8])  # header, extended length, mask key
        code = None
        for i in range(8, 308):
            ws.sock.sendall(frame[i:i + 1])
            try:
                got = ws.recv_frame(timeout=0.1)
            except (TimeoutError, OSError):
                continue
            if got.opcode == OP_PING:
                continue  # not answered: a pong is a frame
            self.assertEqual(got.opcode, OP_CLOSE, f"unexpected {got!r}")
            code = got.close_code
            break
        self.assertEqual(code, 4002, "a trickle of bytes of one unfinished frame kept the connection alive")


if __name__ == "__main__":
    unittest.main()
