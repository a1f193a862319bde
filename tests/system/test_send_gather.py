"""A connection's queued blocks leave in one send (common/runtime/reactor.h,
docs/architecture.md "The relay path"): a burst of large signals, queued by
one loop turn, goes out in sends that carry several send-queue blocks each
(mf_edge_socket_send_buffers_total against mf_edge_socket_sends_total), and
the target reads every byte of every signal, in order, over plain WebSocket
and over TLS. Short writes (the kernel taking part of a send) are covered by
common/runtime/tests/reactor_send_test.cc, where small socket buffers force them."""

import json
import random
import unittest

from edge_process import AdminEdge, edge_config_file, encode_frame, joined_pair, OP_TEXT

LIMITS = {"messages_per_second": 100000, "message_burst": 100000, "per_source_connections": 0,
          "per_source_rate": 0}
SIGNALS = 16  # 16 x 12 KB queued at once stays within the send queue's cap (256 KiB)
DATA_BYTES = 12000  # a frame of three send-queue blocks and more (4,080 bytes each), within the 16 KiB message limit


def signal_text(to, seq):
    filler = "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(DATA_BYTES))
    data = '{"seq":' + str(seq) + ',"fill":"' + filler + '"}'
    return '{"type":"signal","to":"' + to + '","kind":"offer","data":' + data + "}", data


class SendGather(unittest.TestCase):
    def sends(self, edge):
        samples = edge.metrics()
        return (samples[("mf_edge_socket_sends_total", frozenset())],
                samples[("mf_edge_socket_send_buffers_total", frozenset())])

    def check(self, tls):
        with AdminEdge(args=["--config", edge_config_file(LIMITS), "--heartbeat-ms", "600000"], shards=1,
                       tls=tls) as edge:
            a, a_id, b, b_id = joined_pair(self, edge, "gather")
            sends_before, buffers_before = self.sends(edge)
            texts, datas = zip(*(signal_text(b_id, i) for i in range(SIGNALS)))
            # One write: the edge reads the burst in few reads and queues
            # many signals for b in one loop turn.
            a.ws.sock.sendall(b"".join(encode_frame(OP_TEXT, t.encode()) for t in texts))
            for i in range(SIGNALS):
                raw = b.recv_raw()
                message = json.loads(raw)
                self.assertEqual(message["type"], "signal", raw[:200])
                self.assertEqual(message["from"], a_id)
                # Byte for byte: the raw `data` text is relayed unchanged.
                self.assertIn('"data":' + datas[i], raw, f"signal {i} arrived altered or out of order")
            sends_after, buffers_after = self.sends(edge)
            sends = sends_after - sends_before
            buffers = buffers_after - buffers_before
            print(f"\n{'wss' if tls else 'ws'}: {SIGNALS} signals of {DATA_BYTES} bytes to one peer: "
                  f"{sends:.0f} sends carried {buffers:.0f} blocks")
            # Each signal's frame spans at least three blocks, so the sends
            # that carried them hold two blocks more than one each, or
            # more when they carried several signals; sends of one block at
            # a time would make the two counts equal.
            self.assertGreaterEqual(buffers - sends, SIGNALS, "sends carried one block each")

    def test_plain(self):
        self.check(tls=False)

    def test_tls(self):
        self.check(tls=True)


if __name__ == "__main__":
    unittest.main()
