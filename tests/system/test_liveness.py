"""Liveness (docs/protocol.md, "Liveness"): the edge pings after heartbeatMs
without traffic and closes with 4002 after 2.5 x heartbeatMs without any frame.

The edge runs on the test clock (ManualClock): its time moves only when a
test advances it, so what the test asserts does not depend on how fast this
machine runs the test or the edge. Checks that something has not happened
yet ("no ping before the heartbeat") wait a short real time: a stalled
machine can only make such a check pass when it should have failed, never
the reverse."""

import json
import unittest

from build_options import needs_test_hooks
from edge_process import (NOTHING_YET_S, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, TIMER_TICK_MS, ManualClock,
                          RawWebSocket, SharedEdgeCase, class_fixture, encode_frame,
                          wait_metric_at_least)

HEARTBEAT_MS = 300
IDLE_CLOSE_MS = HEARTBEAT_MS * 5 // 2


@needs_test_hooks
class Liveness(SharedEdgeCase):
    SHARDS = 2
    LIMITS = None
    ARGS = ("--heartbeat-ms", str(HEARTBEAT_MS))

    @classmethod
    def setUpClass(cls):
        cls.clock = class_fixture(cls, ManualClock())
        super().setUpClass()
        cls.addClassCleanup(cls.clock.release)  # cleanups run last first: before the edge stops

    def ws(self):
        ws = RawWebSocket.connect(self.edge)
        self.addCleanup(ws.close)
        # A round trip: the edge has stamped this connection's traffic at the
        # clock's current value before the test moves it.
        ws.send_text('{"type":"ping","t":"open"}')
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "open"})
        return ws

    def pongs_received(self):
        return self.edge.metric("mf_edge_pongs_received_total")

    def wait_pongs_received(self, count):
        """Returns once the edge has counted `count` pongs: the clock may move
        on only after the edge has seen the pong, or it could find the
        connection silent with the pong still unread in its socket."""
        wait_metric_at_least(self.edge, "mf_edge_pongs_received_total", count)

    def assert_nothing_yet(self, ws, what):
        try:
            frame = ws.recv_frame(timeout=NOTHING_YET_S)
        except TimeoutError:
            return
        self.fail(f"{what}: got {frame!r}")

    def test_silent_client_gets_ping_then_close_4002(self):
        ws = self.ws()
        self.clock.advance(HEARTBEAT_MS - 1)
        self.assert_nothing_yet(ws, "a ping before heartbeatMs of silence")
        self.clock.advance(TIMER_TICK_MS)
        frame = ws.recv_frame()
        self.assertEqual(frame.opcode, OP_PING, f"expected a server ping, got {frame!r}")
        self.assertFalse(frame.masked)
        self.clock.advance(IDLE_CLOSE_MS - (HEARTBEAT_MS - 1 + TIMER_TICK_MS) - 1)
        self.assert_nothing_yet(ws, "a close before 2.5 x heartbeatMs of silence")
        self.clock.advance(TIMER_TICK_MS)
        code, seen = ws.expect_close()
        self.assertEqual(code, 4002, "idle timeout close code")
        closed, extra = ws.wait_eof()
        self.assertTrue(closed, "TCP not closed after the 4002 close frame")
        self.assertEqual(extra, b"")

    def test_client_answering_pings_stays_connected(self):
        ws = self.ws()
        # Each step is just short of the idle close after the last pong, so
        # whatever the edge's liveness timer was armed for has fired and found
        # heartbeatMs of silence: a ping is due, and answering it must keep
        # the connection. Six steps are 4.4 s of edge time.
        pongs = self.pongs_received()
        for _ in range(6):
            self.clock.advance(IDLE_CLOSE_MS - TIMER_TICK_MS)
            frame = ws.recv_frame()
            self.assertEqual(frame.opcode, OP_PING, f"expected a server ping, got {frame!r}")
            ws.send_frame(OP_PONG, frame.payload)
            pongs += 1
            self.wait_pongs_received(pongs)
        ws.send_text('{"type":"ping","t":"alive"}')
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": "alive"})

    def test_client_traffic_suppresses_server_pings(self):
        # A message every 100 ms of edge time for 2 s: any server ping would
        # arrive before the next pong and fail the comparison.
        ws = self.ws()
        for i in range(20):
            self.clock.advance(100)
            ws.send_frame(OP_TEXT, json.dumps({"type": "ping", "t": i}))
            frame = ws.recv_frame()
            self.assertEqual((frame.opcode, json.loads(frame.payload)), (OP_TEXT, {"type": "pong", "t": i}),
                             "pinged or closed although the client sent a message every 100 ms")

    def test_client_pings_count_as_traffic(self):
        # WebSocket pings from the client are traffic too: no idle close.
        ws = self.ws()
        for _ in range(20):
            self.clock.advance(100)
            ws.send_frame(OP_PING, b"c")
            frame = ws.recv_frame()
            self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"c"), "a server ping or close came first")
        ws.send_text('{"type":"ping","t":2}')
        self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 2})

    def test_bytes_of_an_unfinished_frame_are_not_liveness(self):
        # Liveness counts frames (docs/protocol.md, "without any frame"): a
        # client that trickles one byte of a frame that never ends, far more
        # often than the idle close, is still closed with 4002.
        ws = self.ws()
        frame = encode_frame(OP_TEXT, b"a" * 4000)
        ws.sock.sendall(frame[:8])  # header, extended length, mask key
        for i in range(8, 8 + IDLE_CLOSE_MS // 50):
            self.clock.advance(50)
            ws.sock.sendall(frame[i:i + 1])
        self.clock.advance(TIMER_TICK_MS)
        while True:
            got = ws.recv_frame()
            if got.opcode == OP_PING:
                continue  # not answered: a pong is a frame
            self.assertEqual(got.opcode, OP_CLOSE, f"unexpected {got!r}")
            self.assertEqual(got.close_code, 4002, "a trickle of bytes of one unfinished frame kept the connection alive")
            break


if __name__ == "__main__":
    unittest.main()
