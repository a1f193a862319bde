"""WebSocket behaviour of mf-edge (docs/protocol.md sections 1, 3 `ping`, 5).

Two kinds of clients:
- python3-websockets (an independent RFC 6455 implementation) over ws and wss;
- RawWebSocket (edge_process.py) for byte-exact protocol tests over plain TCP
  and over TLS.
"""

import asyncio
import json
import time
import unittest

import websockets

from edge_process import (EXPECT_TIMEOUT_S, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, SUBPROTOCOL, Edge,
                          RawWebSocket, class_fixture, client_ssl_context, close_payload, encode_frame)

DEFAULT_LIMIT = 16384


class SettledClientProtocol(websockets.WebSocketClientProtocol):
    """Sends the upgrade request only once a TLS 1.3 server has issued its
    session ticket, i.e. has processed the client's Finished (see
    edge_process.Edge.connect(settle=True) for the server bug this avoids)."""

    async def handshake(self, *args, **kwargs):
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.version() == "TLSv1.3":
            deadline = time.monotonic() + EXPECT_TIMEOUT_S
            while not (ssl_object.session is not None and ssl_object.session.has_ticket):
                if time.monotonic() > deadline:
                    raise TimeoutError("no TLS 1.3 session ticket from the edge")
                await asyncio.sleep(0.002)
        return await super().handshake(*args, **kwargs)


def run(coro, timeout=3 * EXPECT_TIMEOUT_S):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------------------
# python3-websockets client


class LibraryClientCases:
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, Edge(tls=cls.TLS, shards=2))

    def connect(self, **kwargs):
        kwargs.setdefault("open_timeout", EXPECT_TIMEOUT_S)
        kwargs.setdefault("close_timeout", EXPECT_TIMEOUT_S)
        if self.TLS:
            kwargs["ssl"] = client_ssl_context()
            kwargs["create_protocol"] = SettledClientProtocol
        return websockets.connect(self.edge.ws_url("/ws?stream=s1"), **kwargs)

    async def exchange(self, ws, text, timeout=EXPECT_TIMEOUT_S):
        await ws.send(text)
        reply = await asyncio.wait_for(ws.recv(), timeout)
        self.assertIsInstance(reply, str, "the edge must answer with a text message")
        return reply

    def test_subprotocol_selected_when_offered(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                self.assertEqual(ws.subprotocol, SUBPROTOCOL)
                self.assertEqual(ws.response_headers.get("Sec-WebSocket-Protocol"), SUBPROTOCOL)
            async with self.connect(subprotocols=["x.other", SUBPROTOCOL]) as ws:
                self.assertEqual(ws.subprotocol, SUBPROTOCOL)
        run(body())

    def test_accepted_without_subprotocol(self):
        async def body():
            async with self.connect() as ws:
                self.assertIsNone(ws.subprotocol)
                self.assertNotIn("Sec-WebSocket-Protocol", ws.response_headers)
                reply = json.loads(await self.exchange(ws, '{"type":"ping","t":1}'))
                self.assertEqual(reply, {"type": "pong", "t": 1})
        run(body())

    def test_permessage_deflate_declined(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL], compression="deflate") as ws:
                self.assertIn("permessage-deflate", ws.request_headers.get("Sec-WebSocket-Extensions", ""),
                              "the client did not offer permessage-deflate: the test proves nothing")
                self.assertNotIn("Sec-WebSocket-Extensions", ws.response_headers)
                self.assertEqual(ws.extensions, [])
                # Uncompressed messages work.
                reply = json.loads(await self.exchange(ws, '{"type":"ping","t":"x"}'))
                self.assertEqual(reply, {"type": "pong", "t": "x"})
        run(body())

    def test_ping_pong_echoes_t(self):
        values = [0, 42, -7, 1.5, 1e300, "abc", "", "ünïcode ☃ 𝄞", True, False, None, [], {},
                  [1, "two", {"three": [3.0]}], {"a": {"b": {"c": [None, True]}}, "k": "v"}]
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for t in values:
                    text = json.dumps({"type": "ping", "t": t}, ensure_ascii=False)
                    reply = json.loads(await self.exchange(ws, text))
                    self.assertEqual(reply.get("type"), "pong", f"reply to {text!r}: {reply!r}")
                    self.assertIn("t", reply, f"reply to {text!r}: {reply!r}")
                    self.assertEqual(reply["t"], t, f"reply to {text!r}: {reply!r}")
                    self.assertNotIn("ref", reply)
                # Without t: a pong without t.
                reply = json.loads(await self.exchange(ws, '{"type":"ping"}'))
                self.assertEqual(reply, {"type": "pong"})
        run(body())

    def test_ping_t_raw_text_preserved(self):
        raw_values = ['{"b" : [1, 2.50]}', "2.50", "1.0e+2", "-0", "18446744073709551615", "0.1e-400",
                      '"\\u00e9\\n\\"q\\""', "[ ]", "[1,[2,[3,{}]]]", '{ "x" :{"y":null} }', "true"]
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for raw in raw_values:
                    for text in ('{"type":"ping","t":' + raw + "}",
                                 '{"t":  ' + raw + '  ,"type" : "ping"}',
                                 '{"type":"ping","t":' + raw + ',"id":"r1"}'):
                        reply = await self.exchange(ws, text)
                        parsed = json.loads(reply)
                        self.assertEqual(parsed.get("type"), "pong", f"{text!r} -> {reply!r}")
                        self.assertEqual(parsed.get("t"), json.loads(raw), f"{text!r} -> {reply!r}")
                        self.assertIn('"t":' + raw, reply,
                                      f"the raw text of t is not preserved byte for byte: {text!r} -> {reply!r}")
        run(body())

    def test_id_echoed_as_ref(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for raw_id, value in (('"abc"', "abc"), ("7", 7), ("1.25", 1.25), ('"' + "i" * 64 + '"', "i" * 64)):
                    reply = await self.exchange(ws, '{"type":"ping","t":5,"id":' + raw_id + "}")
                    self.assertEqual(json.loads(reply), {"type": "pong", "t": 5, "ref": value}, reply)
                    self.assertIn('"ref":' + raw_id, reply)
                    reply = json.loads(await self.exchange(ws, '{"type":"frobnicate","id":' + raw_id + "}"))
                    self.assertEqual(reply.get("type"), "error")
                    self.assertEqual(reply.get("code"), "unknown-type")
                    self.assertEqual(reply.get("ref"), value)
        run(body())

    def test_unknown_type_error_and_connection_stays_open(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for text in ('{"type":"teleport"}', '{"type":"PING","t":1}', '{"type":"","x":[1,2]}',
                             '{"type":"pong","t":1}'):
                    reply = json.loads(await self.exchange(ws, text))
                    self.assertEqual(reply.get("type"), "error", f"{text!r} -> {reply!r}")
                    self.assertEqual(reply.get("code"), "unknown-type", f"{text!r} -> {reply!r}")
                    self.assertIsInstance(reply.get("message"), str)
                    self.assertNotIn("ref", reply)
                reply = json.loads(await self.exchange(ws, '{"type":"ping","t":"still open"}'))
                self.assertEqual(reply, {"type": "pong", "t": "still open"})
        run(body())

    def test_bad_json_error_and_connection_stays_open(self):
        bad = ["not json", '{"type":"ping"', "[1,2,3]", '"a string"', "42", "null",
               '{"type":"ping"} {"type":"ping"}', '{"type":"ping",}', "{'type':'ping'}", "",
               '{"type":"ping","t":[1,2}', " ", '{"type":"ping","t":tru}']
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for text in bad:
                    reply = json.loads(await self.exchange(ws, text))
                    self.assertEqual(reply.get("type"), "error", f"{text!r} -> {reply!r}")
                    self.assertEqual(reply.get("code"), "bad-json", f"{text!r} -> {reply!r}")
                    self.assertIsInstance(reply.get("message"), str)
                reply = json.loads(await self.exchange(ws, '{"type":"ping","t":"ok"}'))
                self.assertEqual(reply, {"type": "pong", "t": "ok"})
        run(body())

    def test_missing_type_is_bad_request(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for text in ('{"t":1}', '{"type":5}', '{"type":null,"id":3}'):
                    reply = json.loads(await self.exchange(ws, text))
                    self.assertEqual(reply.get("type"), "error", f"{text!r} -> {reply!r}")
                    self.assertEqual(reply.get("code"), "bad-request", f"{text!r} -> {reply!r}")
        run(body())

    def test_many_messages_in_flight(self):
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                # The burst of the per-connection rate limit (100 by default,
                # docs/protocol.md section 5): all of them are answered, in order.
                for i in range(100):
                    await ws.send(json.dumps({"type": "ping", "t": i}))
                for i in range(100):
                    reply = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                    self.assertEqual(reply, {"type": "pong", "t": i})
        run(body())

    def test_normal_close(self):
        async def body():
            ws = await self.connect(subprotocols=[SUBPROTOCOL])
            await ws.close(1000, "bye")
            self.assertEqual(ws.close_code, 1000)
        run(body())


class LibraryClientPlain(LibraryClientCases, unittest.TestCase):
    TLS = False

    def test_ping_t_number_beyond_64_bits(self):
        # RFC 8259 numbers have no range limit and t is "any JSON value": a
        # number that fits neither int64/uint64 nor a double is still valid
        # JSON and must be echoed, not refused as bad-json.
        async def body():
            async with self.connect(subprotocols=[SUBPROTOCOL]) as ws:
                for raw in ("123456789012345678901234567890", "-9223372036854775809", "1e400"):
                    text = '{"type":"ping","t":' + raw + "}"
                    reply = await self.exchange(ws, text)
                    self.assertEqual(reply, '{"type":"pong","t":' + raw + "}", f"{text!r} -> {reply!r}")
        run(body())


class LibraryClientTls(LibraryClientCases, unittest.TestCase):
    TLS = True


# ---------------------------------------------------------------------------
# Raw frames


class RawProtocolCases:
    TLS = False
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.edge = Edge(tls=cls.TLS, shards=2, args=cls.ARGS)
        cls.edge.start()

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)

    def ws(self, **kwargs):
        ws = RawWebSocket.connect(self.edge, **kwargs)
        self.addCleanup(ws.close)
        return ws

    def assert_pong(self, ws, t, timeout=EXPECT_TIMEOUT_S):
        reply = json.loads(ws.recv_message(timeout))
        self.assertEqual(reply, {"type": "pong", "t": t})

    def assert_closed_with(self, ws, code, what=""):
        got, _ = ws.expect_close(3.0)
        self.assertEqual(got, code, f"{what}: close code")
        closed, extra = ws.wait_eof()
        self.assertTrue(closed, f"{what}: the edge did not close TCP within 3 s after its close frame")
        self.assertEqual(extra, b"", f"{what}: bytes after the close frame")

    def check_violation(self, data, code, what):
        ws = self.ws()
        ws.send(data)
        self.assert_closed_with(ws, code, what)

    # -- messages that must work --

    def test_ping_message(self):
        ws = self.ws()
        self.assertEqual(ws.response_header("Sec-WebSocket-Protocol"), SUBPROTOCOL)
        self.assertIsNone(ws.response_header("Sec-WebSocket-Extensions"))
        ws.send_text('{"type":"ping","t":"raw"}')
        self.assert_pong(ws, "raw")

    def test_three_fragments(self):
        ws = self.ws()
        ws.send_fragments([b'{"type":"pi', b'ng","t":{"frag', b'":3}}'])
        self.assert_pong(ws, {"frag": 3})
        # Empty fragments are legal too.
        ws.send_fragments([b"", b'{"type":"ping","t":4}', b""])
        self.assert_pong(ws, 4)

    def test_control_frames_between_fragments(self):
        ws = self.ws()
        ws.send(encode_frame(OP_TEXT, b'{"type":"ping",', fin=False)
                + encode_frame(OP_PING, b"between-1")
                + encode_frame(OP_CONT, b'"t":"inter', fin=False)
                + encode_frame(OP_PONG, b"unsolicited")   # must be ignored
                + encode_frame(OP_PING, b"")
                + encode_frame(OP_CONT, b'leaved"}', fin=True))
        frame = ws.recv_frame()
        self.assertEqual((frame.opcode, frame.payload, frame.fin, frame.masked), (OP_PONG, b"between-1", True, False))
        frame = ws.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b""))
        self.assert_pong(ws, "interleaved")

    def test_control_ping_payload_125_bytes(self):
        ws = self.ws()
        payload = bytes(range(125))
        ws.send_frame(OP_PING, payload)
        frame = ws.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, payload))

    def test_one_byte_per_send(self):
        ws = self.ws()
        data = encode_frame(OP_TEXT, '{"type":"ping","t":"slow ☃"}') + encode_frame(OP_PING, b"p")
        for i in range(len(data)):
            ws.send(data[i:i + 1])
            time.sleep(0.001)
        self.assert_pong(ws, "slow ☃")
        frame = ws.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"p"))

    def test_upgrade_with_pipelined_frame(self):
        ws = self.ws(pipelined=encode_frame(OP_TEXT, '{"type":"ping","t":"early"}'))
        self.assert_pong(ws, "early")

    def test_upgrade_head_in_pieces_then_pipelined_frame(self):
        ws = self.ws(head_chunks=7, pipelined=encode_frame(OP_TEXT, '{"type":"ping","t":"pieces"}'))
        self.assert_pong(ws, "pieces")

    def test_several_messages_in_one_send(self):
        ws = self.ws()
        ws.send(b"".join(encode_frame(OP_TEXT, json.dumps({"type": "ping", "t": i})) for i in range(20)))
        for i in range(20):
            self.assert_pong(ws, i)

    def test_utf8_character_split_across_fragments_is_valid(self):
        ws = self.ws()
        text = '{"type":"ping","t":"€𝄞"}'.encode()
        cut1 = text.index("€".encode()) + 1
        cut2 = text.index("𝄞".encode()) + 2
        ws.send_fragments([text[:cut1], text[cut1:cut2], text[cut2:]])
        self.assert_pong(ws, "€𝄞")

    def test_message_of_exactly_the_limit(self):
        ws = self.ws()
        prefix, suffix = '{"type":"ping","t":"', '"}'
        t = "x" * (DEFAULT_LIMIT - len(prefix) - len(suffix))
        text = prefix + t + suffix
        self.assertEqual(len(text.encode()), DEFAULT_LIMIT)
        ws.send_text(text)
        self.assert_pong(ws, t)
        # The same, in fragments.
        data = text.encode()
        ws.send_fragments([data[:5000], data[5000:10000], data[10000:]])
        self.assert_pong(ws, t)

    # -- closes --

    def test_client_close_1000_echoed(self):
        ws = self.ws()
        ws.send_frame(OP_CLOSE, close_payload(1000, b"done"))
        self.assert_closed_with(ws, 1000, "client close 1000")

    def test_client_close_after_messages(self):
        ws = self.ws()
        ws.send_text('{"type":"ping","t":1}')
        self.assert_pong(ws, 1)
        ws.send_frame(OP_CLOSE, close_payload(1000))
        self.assert_closed_with(ws, 1000, "client close 1000")

    def test_unmasked_client_frame(self):
        self.check_violation(encode_frame(OP_TEXT, '{"type":"ping"}', mask=False), 1002, "unmasked frame")

    def test_reserved_bits(self):
        for rsv in (4, 2, 1):
            with self.subTest(rsv=rsv):
                self.check_violation(encode_frame(OP_TEXT, '{"type":"ping"}', rsv=rsv), 1002, f"rsv={rsv}")
        self.check_violation(encode_frame(OP_PING, b"x", rsv=4), 1002, "RSV1 on a ping")

    def test_unknown_opcodes(self):
        for opcode in (3, 7, 0xB, 0xF):
            with self.subTest(opcode=opcode):
                self.check_violation(encode_frame(opcode, b"abc"), 1002, f"opcode {opcode}")

    def test_fragmented_ping(self):
        self.check_violation(encode_frame(OP_PING, b"ab", fin=False) + encode_frame(OP_CONT, b"cd"), 1002,
                             "fragmented ping")

    def test_control_payload_126_bytes(self):
        self.check_violation(encode_frame(OP_PING, b"p" * 126), 1002, "ping of 126 bytes")
        self.check_violation(encode_frame(OP_PONG, b"p" * 126), 1002, "pong of 126 bytes")

    def test_continuation_without_start(self):
        self.check_violation(encode_frame(OP_CONT, b'{"type":"ping"}'), 1002, "continuation without start")

    def test_continuation_after_finished_message(self):
        ws = self.ws()
        ws.send_text('{"type":"ping","t":1}')
        self.assert_pong(ws, 1)
        ws.send_frame(OP_CONT, b"{}")
        self.assert_closed_with(ws, 1002, "continuation after a complete message")

    def test_new_message_inside_fragmented_message(self):
        self.check_violation(encode_frame(OP_TEXT, b'{"type":', fin=False) + encode_frame(OP_TEXT, b'"ping"}'),
                             1002, "text frame inside a fragmented message")

    def test_length_with_msb_set(self):
        ws = self.ws()
        ws.send(bytes([0x81, 0x80 | 127]) + (1 << 63 | 5).to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"hello")
        self.assert_closed_with(ws, 1002, "64-bit length with the most significant bit set")

    def test_binary_message(self):
        self.check_violation(encode_frame(OP_BINARY, b'{"type":"ping"}'), 1003, "binary message")
        self.check_violation(encode_frame(OP_BINARY, b"\x00\x01", fin=False) + encode_frame(OP_CONT, b"\x02"),
                             1003, "fragmented binary message")

    def test_invalid_utf8(self):
        cases = {
            "lone continuation byte": b'{"type":"ping","t":"\x80"}',
            "invalid byte 0xff": b'{"type":"ping","t":"\xff"}',
            "overlong encoding": b'{"type":"ping","t":"\xc0\xaf"}',
            "UTF-16 surrogate": b'{"type":"ping","t":"\xed\xa0\x80"}',
            "above U+10FFFF": b'{"type":"ping","t":"\xf4\x90\x80\x80"}',
            "truncated at message end": b'{"type":"ping","t":"x"}\xe2\x82',
        }
        for name, payload in cases.items():
            with self.subTest(name):
                self.check_violation(encode_frame(OP_TEXT, payload), 1007, name)

    def test_invalid_utf8_in_second_fragment(self):
        self.check_violation(encode_frame(OP_TEXT, b'{"type":"ping",', fin=False)
                             + encode_frame(OP_CONT, b'"t":"\xfe"', fin=False)
                             + encode_frame(OP_CONT, b"}"), 1007, "bad byte in the 2nd fragment")

    def test_truncated_utf8_sequence_at_end_of_fragmented_message(self):
        self.check_violation(encode_frame(OP_TEXT, b'{"type":"ping","t":"a"}', fin=False)
                             + encode_frame(OP_CONT, b"\xf0\x9d"), 1007, "message ends inside a UTF-8 sequence")

    def test_message_too_big_one_frame(self):
        self.check_violation(encode_frame(OP_TEXT, b'"' + b"x" * DEFAULT_LIMIT), 1009, "one frame of 16385 bytes")

    def test_message_too_big_fragments(self):
        pieces = [b"x" * 6000, b"y" * 6000, b"z" * 6000]
        data = b"".join(encode_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == 2)) for i, p in enumerate(pieces))
        self.check_violation(data, 1009, "3 fragments of 6000 bytes")
        # Exactly one byte over, in two fragments.
        data = encode_frame(OP_TEXT, b"a" * 8192, fin=False) + encode_frame(OP_CONT, b"b" * 8193)
        self.check_violation(data, 1009, "8192 + 8193 bytes")

    def test_close_with_reserved_code(self):
        self.check_violation(encode_frame(OP_CLOSE, close_payload(1005)), 1002, "close code 1005 on the wire")
        self.check_violation(encode_frame(OP_CLOSE, close_payload(999)), 1002, "close code 999")

    def test_close_with_one_byte_payload(self):
        self.check_violation(encode_frame(OP_CLOSE, b"\x03"), 1002, "close payload of 1 byte")

    def test_close_reason_invalid_utf8(self):
        self.check_violation(encode_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe")), 1007, "close reason not UTF-8")

    def test_other_connections_unaffected_by_a_violation(self):
        good = self.ws()
        bad = self.ws()
        bad.send_frame(OP_TEXT, b"x", rsv=4)
        self.assert_closed_with(bad, 1002, "rsv")
        good.send_text('{"type":"ping","t":"fine"}')
        self.assert_pong(good, "fine")


class RawProtocolPlain(RawProtocolCases, unittest.TestCase):
    TLS = False


class RawProtocolTls(RawProtocolCases, unittest.TestCase):
    TLS = True


class ConfiguredMessageLimit(unittest.TestCase):
    """--max-message-bytes is honoured (spec: "16 KiB by default, configurable")."""

    def test_configured_limit(self):
        with Edge(args=["--max-message-bytes", "1000"]) as edge:
            prefix, suffix = '{"type":"ping","t":"', '"}'
            t = "q" * (1000 - len(prefix) - len(suffix))
            ws = RawWebSocket.connect(edge)
            try:
                ws.send_text(prefix + t + suffix)
                self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": t})
                ws.send_text(prefix + t + "q" + suffix)
                code, _ = ws.expect_close()
                self.assertEqual(code, 1009)
                closed, _ = ws.wait_eof()
                self.assertTrue(closed)
            finally:
                ws.close()


if __name__ == "__main__":
    unittest.main()
