"""The SDK protocol through mf-ingress (python3-websockets over wss), and the
PROXY v2 header the ingress sends: the client's real address reaches the
edge (per-source admission there) and our own Python backend sees it."""

import asyncio
import contextlib
import json
import socket
import unittest

import websockets

from edge_process import EXPECT_TIMEOUT_S, SUBPROTOCOL, RawWebSocket
from ingress_process import (Ingress, ProxyBackend, class_fixture, echo_handler, ingress_with_edges,
                             trust_context, wait_until)
from test_proxy_protocol import upgrade_status
from test_protocol_signal import RAW_DATA, signal_text


def loopback_alias_usable(address):
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


class IngressSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ingress, cls.edges = class_fixture(cls, ingress_with_edges(
            count=1, edge_args=["--messages-per-second", "1000", "--message-burst", "1000"]))

    async def open(self, stack, path="/ws"):
        """A wss connection through the ingress, closed when `stack` ends."""
        ws = await asyncio.wait_for(websockets.connect(self.ingress.ws_url(path), ssl=trust_context(),
                                                       subprotocols=[SUBPROTOCOL], open_timeout=EXPECT_TIMEOUT_S), EXPECT_TIMEOUT_S)
        stack.push_async_callback(ws.close)
        return ws

    @staticmethod
    async def recv_json(ws, timeout=EXPECT_TIMEOUT_S):
        raw = await asyncio.wait_for(ws.recv(), timeout)
        return raw, json.loads(raw)

    async def join(self, ws, stream, peer):
        await ws.send(json.dumps({"type": "join", "streamId": stream, "rendition": "r1", "peerId": peer}))
        _, joined = await self.recv_json(ws)
        _, peers = await self.recv_json(ws)
        return joined, peers

    def test_join_answers_joined_then_peers(self):
        async def run():
            async with contextlib.AsyncExitStack() as stack:
                ws = await self.open(stack)
                self.assertEqual(ws.subprotocol, SUBPROTOCOL)
                joined, peers = await self.join(ws, "sdk-join", "p-solo")
                self.assertEqual(joined["type"], "joined", joined)
                self.assertEqual((joined["peerId"], joined["streamId"], joined["rendition"]),
                                 ("p-solo", "sdk-join", "r1"))
                self.assertEqual(joined["edge"], "edge-a", "the edge behind the ingress answered")
                self.assertEqual(peers, {"type": "peers", "peers": []})
        asyncio.run(run())

    def test_two_peers_see_each_other_and_signal_byte_exact(self):
        async def run():
            async with contextlib.AsyncExitStack() as stack:
                a, b = await self.open(stack), await self.open(stack)
                await self.join(a, "sdk-pair", "p-a")
                _, peers_b = await self.join(b, "sdk-pair", "p-b")
                self.assertEqual([p["peerId"] for p in peers_b["peers"]], ["p-a"])
                await a.send(json.dumps({"type": "need-peers"}))
                _, peers_a = await self.recv_json(a)
                self.assertEqual([p["peerId"] for p in peers_a["peers"]], ["p-b"])
                for raw_data in RAW_DATA:
                    with self.subTest(data=raw_data):
                        await a.send(signal_text("p-b", "offer", raw_data))
                        raw, message = await self.recv_json(b)
                        self.assertEqual((message["type"], message["from"], message["kind"]),
                                         ("signal", "p-a", "offer"), raw)
                        self.assertIn('"data":' + raw_data, raw, "data not byte-exact through the ingress")
                # And back the other way.
                await b.send(signal_text("p-a", "answer", RAW_DATA[0]))
                raw, message = await self.recv_json(a)
                self.assertEqual(message["from"], "p-b", raw)
                self.assertIn('"data":' + RAW_DATA[0], raw)
        asyncio.run(run())

    def test_large_messages_both_ways(self):
        # 16 KB text messages cross TLS record boundaries in both directions.
        async def run():
            async with contextlib.AsyncExitStack() as stack:
                a, b = await self.open(stack), await self.open(stack)
                await self.join(a, "sdk-big", "p-a")
                await self.join(b, "sdk-big", "p-b")
                payload = json.dumps("x" * 15000)
                for _ in range(5):
                    await a.send(signal_text("p-b", "candidate", payload))
                    raw, _ = await self.recv_json(b)
                    self.assertIn(payload, raw)
        asyncio.run(run())


class IngressProxyHeader(unittest.TestCase):
    """What the ingress writes first on each backend connection."""

    def test_header_carries_client_address_sni_and_alpn(self):
        with ProxyBackend(echo_handler) as backend, Ingress(backends=[backend.address]) as ingress:
            ctx = trust_context()
            ctx.set_alpn_protocols(["http/1.1"])
            sources = ["127.0.0.1"] + (["127.0.0.2"] if loopback_alias_usable("127.0.0.2") else [])
            for source in sources:
                with self.subTest(source=source):
                    sock = ingress.connect(ssl_context=ctx, source=source)
                    self.addCleanup(sock.close)
                    sock.sendall(b"ping\n")
                    tunnel = backend.tunnel_for(sock.getsockname())
                    header = tunnel.header
                    self.assertEqual(header.command, "proxy")
                    self.assertEqual(header.family, 0x11, "TCP over IPv4")
                    self.assertEqual(header.source, sock.getsockname(), "the client's own address and port")
                    self.assertEqual(header.destination, ("127.0.0.1", ingress.port), "the ingress listener")
                    self.assertEqual(header.tlvs.get(0x02), b"localhost", "SNI as the AUTHORITY TLV")
                    self.assertEqual(header.tlvs.get(0x01), b"http/1.1", "ALPN TLV")
                    self.assertEqual(sock.recv(100), b"ping\n", "bytes unchanged after the header")
                    sock.close()
            wait_until(lambda: backend.probes > 0, EXPECT_TIMEOUT_S, "a health probe (PROXY LOCAL + GET /healthz)")

    def test_edge_admits_by_the_real_client_address(self):
        # The edge caps each source address at one connection: through the
        # ingress (one TCP peer, 127.0.0.1) two different client addresses are
        # both admitted, a second one from the same address gets the edge's
        # 429, which travels back through the tunnel.
        for address in ("127.0.0.2", "127.0.0.3"):
            if not loopback_alias_usable(address):
                self.fail(f"cannot bind {address}: the test needs the 127/8 loopback range")
        with ingress_with_edges(count=1, edge_args=["--per-source-connections", "1", "--per-source-rate", "0"]) \
                as (ingress, _):
            statuses, sockets = [], []
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
                sock = ingress.connect(source=source)
                self.addCleanup(sock.close)
                sockets.append(sock)
                statuses.append(upgrade_status(sock))
            self.assertEqual([s.split(" ")[1] for s in statuses], ["101", "101", "429"], statuses)
            # The admitted ones are live WebSocket sessions.
            for sock in sockets[:2]:
                ws = RawWebSocket(sock)
                ws.send_text(json.dumps({"type": "ping", "t": 7}))
                self.assertEqual(json.loads(ws.recv_message()), {"type": "pong", "t": 7})
            for sock in sockets:
                sock.close()

if __name__ == "__main__":
    unittest.main()
