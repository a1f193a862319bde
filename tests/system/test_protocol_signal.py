"""`signal` relay (docs/protocol.md sections 3, 4 and 5): byte-exact data, order,
same-stream guard, across renditions, with one and two shards."""

import json
import random
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, SharedEdgeCase, AdminEdge, SdkClient, edge_config_file

# Raw JSON texts of `data`, each must reach the target byte for byte.
RAW_DATA = [
    '{"type":"offer","sdp":"v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\n"}',
    '{ "a" :  [1, 2.50 ,-0, 1e400],"b":{ } }',
    '"\\u00e9\\ud83d\\ude00 \\"q\\" \\/"',
    '123456789012345678901234567890',
    '-9223372036854775809',
    '0.1e-400',
    'null',
    'true',
    '[ ]',
    '"ünïcödé ☃ 𝄞"',
    '{"candidate":"candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host","sdpMid":"0","sdpMLineIndex":0}',
    '[[[[[[[[1]]]]]]]]',
]


def signal_text(to, kind, raw_data, extra=""):
    return '{"type":"signal","to":' + json.dumps(to) + ',"kind":"' + kind + '","data":' + raw_data + extra + "}"


class SignalCases:
    SHARDS = 1
    LIMITS = {"messages_per_second": 2000, "message_burst": 2000, "per_source_connections": 0,
              "per_source_rate": 0}

    @classmethod
    def setUpClass(cls):
        cls.EDGE_ID = f"edge-signal-{cls.SHARDS}"
        super().setUpClass()

    def joined(self, stream, rendition, peer, **fields):
        c = self.client()
        c.join(stream, rendition, peer, **fields)
        return c

    def pair(self, stream, a="A", b="B", rendition_b=None):
        tag = f"{stream}-{random.randrange(1 << 30)}"
        pa, pb = f"p-{tag}-{a}", f"p-{tag}-{b}"
        ca = self.joined(stream, "r1", pa)
        cb = self.joined(stream, rendition_b or "r1", pb)
        return ca, pa, cb, pb

    def assert_reply_not_delivered(self, replier, sender, sender_id, ref, why):
        """`replier`'s signal with `ref` to `sender_id` came back as
        peer-not-found, and `sender` received nothing."""
        err = replier.recv()
        self.assertEqual((err.get("type"), err.get("code"), err.get("to"), err.get("ref")),
                         ("error", "peer-not-found", sender_id, ref), err)
        self.assertEqual(sender.quiet(0.2), [], why)

    def assert_relayed(self, target, sender_id, kind, raw_data):
        raw = target.recv_raw()
        message = json.loads(raw)
        self.assertEqual(message.get("type"), "signal", raw)
        self.assertEqual(message.get("from"), sender_id, raw)
        self.assertEqual(message.get("kind"), kind, raw)
        self.assertNotIn("to", message, raw)
        self.assertNotIn("ref", message, "a relayed signal carries no ref of the sender's id")
        marker = '"data":' + raw_data
        position = raw.find(marker)
        self.assertGreaterEqual(position, 0, f"data not byte-exact: sent {raw_data!r}, target got {raw!r}")
        self.assertIn(raw[position + len(marker)], ",}", f"data not byte-exact: {raw!r}")
        self.assertEqual(json.dumps(message["data"]), json.dumps(json.loads(raw_data)))

    def test_data_byte_exact(self):
        a, pa, b, pb = self.pair("sig-exact")
        for raw in RAW_DATA:
            with self.subTest(data=raw):
                a.send(signal_text(pb, "offer", raw))
                self.assert_relayed(b, pa, "offer", raw)
        self.assertEqual(a.quiet(0.2), [], "the sender gets no reply for a relayed signal")

    def test_every_kind_both_directions(self):
        a, pa, b, pb = self.pair("sig-kinds")
        for kind in ("offer", "answer", "candidate", "bye"):
            a.send(signal_text(pb, kind, '{"k":"' + kind + '"}'))
            self.assert_relayed(b, pa, kind, '{"k":"' + kind + '"}')
            b.send(signal_text(pa, kind, '"back"', ',"id":"s-1"'))
            self.assert_relayed(a, pb, kind, '"back"')

    def test_data_at_the_message_limit(self):
        a, pa, b, pb = self.pair("sig-big")
        filler = "z" * (16384 - len(signal_text(pb, "offer", "").encode()) - 2)
        raw = '"' + filler + '"'
        text = signal_text(pb, "offer", raw)
        self.assertEqual(len(text.encode()), 16384)
        a.send(text)
        self.assert_relayed(b, pa, "offer", raw)

    def test_two_hundred_signals_in_order(self):
        a, pa, b, pb = self.pair("sig-order")
        texts = [signal_text(pb, "candidate", '{"seq":' + str(i) + ',"pad":"' + "x" * (i % 17) + '"}')
                 for i in range(200)]
        for text in texts:
            a.send(text)
        got = []
        for _ in range(200):
            message = b.recv()
            self.assertEqual((message.get("type"), message.get("from")), ("signal", pa), message)
            got.append(message["data"]["seq"])
        self.assertEqual(got, list(range(200)), "signals must arrive in the order sent")

    def test_interleaved_senders_keep_per_sender_order(self):
        tag = random.randrange(1 << 30)
        target = self.joined("sig-inter", "r1", f"p-int-{tag}-t")
        senders = [(self.joined("sig-inter", "r1", f"p-int-{tag}-{i}"), f"p-int-{tag}-{i}") for i in range(4)]
        for n in range(30):
            for c, _ in senders:
                c.send(signal_text(f"p-int-{tag}-t", "candidate", str(n)))
        last = {pid: -1 for _, pid in senders}
        for _ in range(120):
            m = target.recv()
            self.assertEqual(m["data"], last[m["from"]] + 1, f"out of order from {m['from']}")
            last[m["from"]] = m["data"]
        self.assertEqual(set(last.values()), {29})

    def test_across_renditions_of_same_stream(self):
        a, pa, b, pb = self.pair("sig-rend", rendition_b="r2")
        a.send(signal_text(pb, "offer", '{"x":1}'))
        self.assert_relayed(b, pa, "offer", '{"x":1}')
        b.send(signal_text(pa, "answer", '{"y":2}'))
        self.assert_relayed(a, pb, "answer", '{"y":2}')

    def test_other_stream_is_peer_not_found(self):
        tag = random.randrange(1 << 30)
        a = self.joined("sig-nf-1", "r1", f"p-nf-{tag}-a")
        other = self.joined("sig-nf-2", "r1", f"p-nf-{tag}-o")
        for to, ref_raw, ref in ((f"p-nf-{tag}-o", '"r-1"', "r-1"), (f"p-nf-{tag}-unknown", "77", 77)):
            a.send('{"type":"signal","id":' + ref_raw + ',"to":"' + to + '","kind":"offer","data":{}}')
            raw = a.recv_raw()
            err = json.loads(raw)
            self.assertEqual(err.get("type"), "error", raw)
            self.assertEqual(err.get("code"), "peer-not-found", raw)
            self.assertEqual(err.get("to"), to, raw)
            self.assertEqual(err.get("ref"), ref, raw)
            self.assertIn('"ref":' + ref_raw, raw)
            self.assertIsInstance(err.get("message"), str)
        self.assertEqual(other.quiet(0.3), [], "a peer of another stream must never receive the signal")
        # The errors of the two cases must not reveal which one exists elsewhere.
        a.send(signal_text(f"p-nf-{tag}-o", "offer", "1"))
        e1 = a.recv()
        a.send(signal_text(f"p-nf-{tag}-ghost", "offer", "1"))
        e2 = a.recv()
        self.assertEqual((e1["code"], e1["message"]), (e2["code"], e2["message"]))

    def test_peer_that_left_is_not_found(self):
        a, pa, b, pb = self.pair("sig-left")
        b.send({"type": "leave"})
        b.expect("left")
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while True:
            a.send(signal_text(pb, "offer", "1"))
            reply = a.quiet(0.15)
            if reply and reply[0].get("code") == "peer-not-found":
                break
            self.assertLess(time.monotonic(), deadline, f"signal to a peer that left: {reply}")
        self.assertEqual(b.quiet(0.2), [], "a peer that left must not receive signals")

    # A reply goes by the handle its target learnt from the signal it answers
    # (docs/architecture.md, "The relay path"): each case makes that handle
    # stale or points its peerId elsewhere, and the reply must do what the
    # peerId's text says, not what the handle said.
    def test_reply_after_the_sender_joined_again_is_delivered(self):
        a, pa, b, pb = self.pair("sig-rejoin")
        a.send(signal_text(pb, "offer", '{"n":1}'))
        self.assert_relayed(b, pa, "offer", '{"n":1}')
        a.send({"type": "leave"})
        a.expect("left")
        a.join("sig-rejoin", "r2", pa)  # a new claim of the same peerId
        b.send(signal_text(pa, "answer", '{"n":2}'))
        self.assert_relayed(a, pb, "answer", '{"n":2}')
        a.send(signal_text(pb, "candidate", '{"n":3}'))
        self.assert_relayed(b, pa, "candidate", '{"n":3}')

    def test_reply_after_the_sender_joined_another_stream_is_peer_not_found(self):
        a, pa, b, pb = self.pair("sig-restream")
        a.send(signal_text(pb, "offer", '{"n":1}'))
        self.assert_relayed(b, pa, "offer", '{"n":1}')
        a.send({"type": "leave"})
        a.expect("left")
        a.join("sig-restream-other", "r1", pa)
        b.send(signal_text(pa, "answer", '{"n":2}', ',"id":5'))
        self.assert_reply_not_delivered(b, a, pa, 5, "a peer now in another stream must not receive the reply")

    def test_reply_after_the_sender_switched_stream_is_peer_not_found(self):
        a, pa, b, pb = self.pair("sig-switch")
        a.send(signal_text(pb, "offer", '{"n":1}'))
        self.assert_relayed(b, pa, "offer", '{"n":1}')
        a.join("sig-switch-other", "r1", pa)  # a switch: joined, same peerId, another stream
        b.send(signal_text(pa, "answer", '{"n":2}', ',"id":6'))
        self.assert_reply_not_delivered(b, a, pa, 6, "a peer that switched stream must not receive the reply")

    def test_many_peers_all_pairs(self):
        # With two shards, 40 peers land on both: many sender/target pairs
        # cross shards. Every signal arrives byte-exact and in order.
        tag = random.randrange(1 << 30)
        clients = [(self.joined("sig-many", f"r{i % 3}", f"p-many-{tag}-{i}"), f"p-many-{tag}-{i}") for i in range(40)]
        for round_ in range(5):
            for i, (c, _) in enumerate(clients):
                to = clients[(i + 1 + round_ * 7) % 40][1]
                c.send(signal_text(to, "candidate", '{"r": ' + str(round_) + ' ,"i":' + str(i) + "}"))
        for j, (c, pid) in enumerate(clients):
            rounds = []
            for _ in range(5):
                raw = c.recv_raw()
                m = json.loads(raw)
                self.assertEqual(m["type"], "signal", raw)
                sender = int(m["from"].rsplit("-", 1)[1])
                self.assertEqual((sender + 1 + m["data"]["r"] * 7) % 40, j)
                self.assertIn('"data":{"r": ' + str(m["data"]["r"]) + ' ,"i":' + str(sender) + "}", raw)
                rounds.append(m["data"]["r"])
            self.assertEqual(sorted(rounds), list(range(5)))


class SignalOneShard(SignalCases, SharedEdgeCase):
    SHARDS = 1


class SignalTwoShards(SignalCases, SharedEdgeCase):
    SHARDS = 2


class SignalFourShards(SignalCases, SharedEdgeCase):
    SHARDS = 4


if __name__ == "__main__":
    unittest.main()
