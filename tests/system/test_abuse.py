"""Abuse and fault tests with figures (docs/security.md). Each test prints one line
`abuse: ...` on stdout with what it measured (docs/security.md collects
them). Loopback only, bounded in count and time.

Covered elsewhere, not repeated here: ingress SIGHUP under load
(test_ingress_reload.ReloadUnderLoad), the 20-error limit and the rate
limit's exact budget (test_protocol_errors), 100 garbage connections
(test_bad_input)."""

import asyncio
import contextlib
import json
import os
import random
import resource
import select
import signal
import socket
import threading
import time
import unittest

import websockets

from build_options import needs_test_hooks
from edge_process import (EXPECT_TIMEOUT_S, NOTHING_YET_S, AccountingReaders, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,
                          OP_TEXT, UNLIMITED_SOURCE, AdminEdge, AsyncWs,
                          ManualClock, RawWebSocket, SdkClient, admin_get, build_dir, close_payload, edge_config_file,
                          encode_frame, parse_prometheus, upgrade_request)
from ingress_process import BackendEdge, Ingress, trust_context

FAST = dict(UNLIMITED_SOURCE, messages_per_second=100000, message_burst=100000)


def sanitized():
    """True for an ASan/UBSan build: its quarantine and shadow memory inflate
    RSS, so memory bounds are scaled by MEMORY_SCALE there."""
    try:
        with open(os.path.join(build_dir(), "meson-info", "intro-buildoptions.json")) as f:
            options = {o["name"]: o["value"] for o in json.load(f)}
    except (OSError, ValueError, KeyError):
        return False
    return options.get("b_sanitize", "none") not in ("none", "")


MEMORY_SCALE = 8 if sanitized() else 1


def figure(text):
    print(f"abuse: {text}", flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def raise_nofile(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def edge_metric(edge, name):
    samples, _ = parse_prometheus(admin_get(edge.admin_port, "/metrics").body.decode())
    return sum(v for (n, _), v in samples.items() if n == name)


def ping_latencies_ms(connect, count=50):
    """An ordinary client: one upgrade, then `count` SDK pings one at a time;
    (upgrade ms, [ping round trip ms])."""
    started = time.monotonic()
    client = connect()
    upgrade_ms = (time.monotonic() - started) * 1000
    try:
        rtts = []
        for i in range(count):
            t0 = time.monotonic()
            reply = client.request({"type": "ping", "t": i})
            rtts.append((time.monotonic() - t0) * 1000)
            assert reply == {"type": "pong", "t": i}, reply
        return upgrade_ms, rtts
    finally:
        client.close()


class TlsSdkClient(SdkClient):
    """An SdkClient over an already connected (TLS) socket."""

    def __init__(self, sock, timeout=EXPECT_TIMEOUT_S):
        self.ws = RawWebSocket(sock)
        self.ws.upgrade(timeout=timeout)
        self.last_raw = None


class Slowloris(unittest.TestCase):
    def test_slowloris_upgrades_are_cut_at_the_handshake_timeout(self):
        timeout_ms = 1000
        with AdminEdge(args=["--config", edge_config_file(UNLIMITED_SOURCE), "--handshake-timeout-ms",
                             str(timeout_ms)], shards=1) as edge:
            request, _ = upgrade_request()
            count = 20
            socks, opened, closed_at, sent = [], [], {}, {}
            timeouts_before = edge_metric(edge, "mf_edge_handshake_timeouts_total")
            for _ in range(count):
                # Read before connecting: the edge's deadline starts at its
                # accept, which comes later, so a lifetime measured from here
                # is never shorter than the edge's, however slow this client.
                opened.append(time.monotonic())
                s = socket.create_connection((edge.host, edge.port), timeout=EXPECT_TIMEOUT_S)
                s.setblocking(False)
                socks.append(s)
            # One byte of the head per socket every 100 ms: the head would
            # take 15 s, far past the deadline.
            stop = threading.Event()
            latencies = {}

            def ordinary():
                latencies["upgrade"], latencies["rtts"] = ping_latencies_ms(lambda: SdkClient(edge), 30)

            checker = threading.Thread(target=ordinary)
            checker.start()
            deadline = time.monotonic() + timeout_ms / 1000 + 3
            while len(closed_at) < count and time.monotonic() < deadline:
                for i, s in enumerate(socks):
                    if i in closed_at:
                        continue
                    try:
                        data = s.recv(4096)
                        if not data:
                            closed_at[i] = time.monotonic()
                            continue
                        self.fail(f"the edge answered a head it never got whole: {data!r}")
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[i] = time.monotonic()
                        continue
                    n = sent.get(i, 0)
                    if n < len(request) - 1:  # never the last byte
                        try:
                            s.send(request[n:n + 1])
                            sent[i] = n + 1
                        except OSError:
                            closed_at[i] = time.monotonic()
                time.sleep(0.1)
            checker.join(10)
            stop.set()
            for s in socks:
                s.close()
            self.assertEqual(len(closed_at), count, f"only {len(closed_at)} of {count} slowloris connections cut")
            lifetimes = [(closed_at[i] - opened[i]) * 1000 for i in range(count)]
            # Never before the deadline (the timer wheel's tick is 10 ms);
            # and every one cut by the deadline itself, as the edge counts
            # it (how long after the deadline this client noticed depends on
            # the machine's load: a figure, not an assertion).
            self.assertGreaterEqual(min(lifetimes), timeout_ms - 50, lifetimes)
            self.assertEqual(edge_metric(edge, "mf_edge_handshake_timeouts_total") - timeouts_before, count)
            self.assertEqual(len(latencies["rtts"]), 30, "the ordinary client was not served")
            p99 = percentile(latencies["rtts"], 99)
            figure(f"{count} slowloris upgrades (1 byte/100 ms): cut after {min(lifetimes):.0f}..{max(lifetimes):.0f} ms "
                   f"(handshake timeout {timeout_ms} ms) having sent {min(sent.values())}..{max(sent.values())} "
                   f"bytes of the head; ordinary client upgrade {latencies['upgrade']:.1f} ms, ping p99 {p99:.1f} ms")


class HalfOpen(unittest.TestCase):
    COUNT = 2000
    TIMEOUT_MS = 2000

    @classmethod
    def setUpClass(cls):
        raise_nofile(cls.COUNT * 2 + 500)

    def hold(self, name, server_pid, address, ordinary, timeouts):
        """COUNT TCP connects that never send; returns the figures line."""
        rss_before = rss_kb(server_pid)
        # A low descriptor number kept free for the ordinary client (its TLS
        # helpers use select(), limited to descriptors below 1024).
        reserved = socket.socket()
        socks, opened = [], []
        started = time.monotonic()
        timeouts_before = timeouts()
        for _ in range(self.COUNT):
            s = socket.socket()
            s.setblocking(False)
            opened.append(time.monotonic())  # before connecting: the server's deadline starts later, at its accept
            try:
                s.connect(address)
            except BlockingIOError:
                pass
            socks.append(s)
        connect_s = time.monotonic() - started
        # Every connect completes (the accept queue takes them all).
        poller = select.poll()
        by_fd = {}
        for s in socks:
            poller.register(s, select.POLLOUT)
            by_fd[s.fileno()] = s
        pending = set(by_fd)
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                if fd in pending:
                    pending.discard(fd)
                    poller.modify(fd, select.POLLIN)
        self.assertFalse(pending, f"{len(pending)} connects did not complete")
        time.sleep(0.3)
        rss_peak = rss_kb(server_pid)
        reserved.close()
        upgrade_ms, rtts = ping_latencies_ms(ordinary, 50)
        # Now wait for the server to close them all (EOF or reset).
        closed_at = {}
        for s in socks:
            poller.modify(s, select.POLLIN)
        deadline = time.monotonic() + self.TIMEOUT_MS / 1000 + 5
        while len(closed_at) < len(socks) and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                if fd in closed_at:
                    continue
                try:
                    data = by_fd[fd].recv(4096)
                except OSError:
                    data = b""
                if not data:
                    closed_at[fd] = time.monotonic()
                    poller.unregister(fd)
        open_at_peak = len(socks)
        lifetimes = sorted((closed_at[s.fileno()] - opened[i]) * 1000 for i, s in enumerate(socks)
                           if s.fileno() in closed_at)
        for s in socks:
            s.close()
        self.assertEqual(len(closed_at), self.COUNT, f"{self.COUNT - len(closed_at)} half-open connections never closed")
        self.assertGreaterEqual(lifetimes[0], self.TIMEOUT_MS - 50)
        # Every one was cut by the deadline, as the server counts it; how
        # long after it this client noticed is a figure (machine load).
        self.assertEqual(timeouts() - timeouts_before, self.COUNT)
        growth_mb = (rss_peak - rss_before) / 1024
        self.assertLess(growth_mb, 64 * MEMORY_SCALE, "memory per half-open connection is not bounded")
        self.assertEqual(len(rtts), 50, "the ordinary client was not served")
        p99 = percentile(rtts, 99)
        return (f"{self.COUNT} half-open connections to the {name} (connected in {connect_s * 1000:.0f} ms): "
                f"RSS +{growth_mb:.1f} MB ({(rss_peak - rss_before) * 1024 / self.COUNT:.0f} B each), "
                f"peak open {open_at_peak}, all closed at the handshake timeout ({self.TIMEOUT_MS} ms: after "
                f"{lifetimes[0]:.0f}..{lifetimes[-1]:.0f} ms), ordinary client upgrade {upgrade_ms:.1f} ms, "
                f"ping p99 {p99:.1f} ms")

    def test_half_open_connections_to_the_edge(self):
        with AdminEdge(args=["--config", edge_config_file(UNLIMITED_SOURCE), "--handshake-timeout-ms",
                             str(self.TIMEOUT_MS)], tls=True, shards=2) as edge:
            figure(self.hold("edge", edge.process.pid, (edge.host, edge.port),
                             lambda: TlsSdkClient(edge.connect()),
                             lambda: edge_metric(edge, "mf_edge_handshake_timeouts_total")))

    def test_half_open_connections_to_the_ingress(self):
        with contextlib.ExitStack() as stack:
            backend = stack.enter_context(BackendEdge("edge-a", args=["--config", edge_config_file(UNLIMITED_SOURCE)]))
            ingress = stack.enter_context(Ingress(backends=[backend.address],
                                                  settings={"tls": {"handshake_timeout_ms": self.TIMEOUT_MS}}))
            figure(self.hold("ingress", ingress.process.pid, (ingress.host, ingress.port),
                             lambda: TlsSdkClient(ingress.connect()),
                             lambda: ingress.metric("mf_ingress_tls_failures_total", reason="handshake_timeout")))


class NeverReads(unittest.TestCase):
    def test_a_peer_that_never_reads_is_closed_as_slow_consumer(self):
        with AdminEdge(args=["--config", edge_config_file(FAST)], shards=1) as edge:
            # The reader's receive buffer is tiny and it never reads.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(3)
            sock.connect((edge.host, edge.port))
            silent = RawWebSocket(sock)
            silent.upgrade()
            silent.send_text(json.dumps({"type": "join", "streamId": "slow", "rendition": "r1", "peerId": "p-silent"}))
            sender = SdkClient(edge)
            try:
                sender.join("slow", "r1", "p-sender")
                rss_before = rss_kb(edge.process.pid)
                closes_before = edge_metric(edge, "mf_edge_slow_consumer_closes_total")
                data = json.dumps({"p": "x" * 8000})
                sent, started, cut_after = 0, time.monotonic(), None
                rss_max = rss_before
                # Bounded: at most 4000 signals of 8 KB (32 MB) or 10 s.
                while sent < 4000 and time.monotonic() - started < 10:
                    batch = b"".join(encode_frame(OP_TEXT, '{"type":"signal","to":"p-silent","kind":"offer","data":' + data + "}")
                                     for _ in range(50))
                    sender.ws.send(batch)
                    sent += 50
                    rss_max = max(rss_max, rss_kb(edge.process.pid))
                    if edge_metric(edge, "mf_edge_slow_consumer_closes_total") > closes_before:
                        cut_after = time.monotonic() - started
                        break
                self.assertIsNotNone(cut_after, f"the silent peer was never closed after {sent} signals of 8 KB")
                # The sender is still served.
                self.assertEqual(sender.request({"type": "ping", "t": "after"}).get("type") in ("pong", "error"), True)
                growth_mb = (rss_max - rss_before) / 1024
                self.assertLess(growth_mb, 32 * MEMORY_SCALE)
                figure(f"a peer that never reads (SO_RCVBUF 4 KB) while another signals it 8 KB at a time: "
                       f"closed as slow consumer after {sent} signals ({sent * 8 / 1024:.1f} MB) in "
                       f"{cut_after * 1000:.0f} ms; edge RSS +{growth_mb:.1f} MB at most (send queue cap 256 KB)")
            finally:
                sender.close()
                silent.close()


class Floods(unittest.TestCase):
    @needs_test_hooks
    def test_message_floods_are_rate_limited_then_closed_4003(self):
        # The edge's clock stands still (ManualClock): no token comes back
        # during the flood, so exactly the burst is answered however slowly
        # the edge gets through the messages.
        with ManualClock() as clock, AdminEdge(args=["--config", edge_config_file(UNLIMITED_SOURCE)], shards=2) as edge:
            flooders = [SdkClient(edge) for _ in range(10)]
            try:
                started = time.monotonic()
                for c in flooders:
                    c.ws.send(b"".join(encode_frame(OP_TEXT, '{"type":"ping","t":1}') for _ in range(1000)))
                results = {}

                def ordinary():
                    results["upgrade"], results["rtts"] = ping_latencies_ms(lambda: SdkClient(edge), 30)

                checker = threading.Thread(target=ordinary)
                checker.start()
                codes, answered, limited = [], [], []
                for c in flooders:
                    code, seen = c.expect_close(timeout=EXPECT_TIMEOUT_S)
                    codes.append(code)
                    msgs = [json.loads(f.payload) for f in seen if f.opcode == OP_TEXT]
                    answered.append(sum(1 for m in msgs if m.get("type") == "pong"))
                    limited.append(sum(1 for m in msgs if m.get("code") == "rate-limited"))
                took = time.monotonic() - started
                checker.join(10)
                self.assertEqual(codes, [4003] * len(flooders))
                self.assertEqual(answered, [100] * len(flooders), "the burst of 100, and not one more")
                self.assertTrue(all(l >= 20 for l in limited), limited)
                self.assertEqual(len(results["rtts"]), 30, "the ordinary client was not served")
                p99 = percentile(results["rtts"], 99)
                figure(f"10 clients flooding 1000 pings each: {min(answered)}..{max(answered)} answered (burst 100), "
                       f"{min(limited)}..{max(limited)} rate-limited, all closed 4003 within {took * 1000:.0f} ms; "
                       f"ordinary client ping p99 {p99:.1f} ms")
            finally:
                for c in flooders:
                    c.close()


class HostileJson(unittest.TestCase):
    def test_oversized_and_deeply_nested_json(self):
        with AdminEdge(args=["--config", edge_config_file(FAST)], shards=1) as edge:
            cases = 0
            # Nesting 64 is accepted as JSON; 65 and 8000 are bad-json, the
            # connection stays open.
            c = SdkClient(edge)
            try:
                for depth, expected in ((64, None), (65, "bad-json"), (8000, "bad-json")):
                    text = '{"type":"ping","t":' + "[" * depth + "]" * depth + "}"
                    reply = c.request(text)
                    cases += 1
                    if expected is None:
                        self.assertEqual(reply.get("type"), "pong", (depth, reply))
                    else:
                        self.assertEqual((reply.get("type"), reply.get("code")), ("error", expected), depth)
                # 16 KiB of JSON is the limit; one byte more is 1009.
                ok = '{"type":"ping","t":"' + "a" * (16384 - 23) + '"}'
                self.assertEqual(len(ok), 16384 - 1)
                self.assertEqual(c.request(ok).get("type"), "pong")
                cases += 1
            finally:
                c.close()
            for payload_size, announced in ((16385, None), (100, 1 << 40), (100, (1 << 63) - 1)):
                c = SdkClient(edge)
                try:
                    text = '{"type":"ping","t":"' + "a" * (payload_size - 20) + '"}'
                    c.ws.send(encode_frame(OP_TEXT, text, length=announced, length_bytes=8 if announced else None)
                              if announced else encode_frame(OP_TEXT, text))
                    code, _ = c.expect_close()
                    self.assertEqual(code, 1009, (payload_size, announced))
                    cases += 1
                finally:
                    c.close()
            # Fragments adding up past the limit: 1009 at the fragment that crosses it.
            c = SdkClient(edge)
            try:
                c.ws.send_fragments([b"[" * 8000, b"[" * 8000, b"[" * 8000])
                self.assertEqual(c.expect_close()[0], 1009)
                cases += 1
            finally:
                c.close()
            self.assertEqual(admin_get(edge.admin_port, "/healthz").status, 200)
            figure(f"oversized and deeply nested JSON: {cases} cases (nesting 64 ok, 65 and 8000 bad-json, "
                   f"16 KiB ok, 16 KiB + 1 and lengths 2^40 and 2^63-1 closed 1009, fragments past 16 KiB 1009); "
                   f"edge up")


# Malformed frames for MalformedFrames: (name, expected close code, frame bytes).
def malformed_frame(kind, rng):
    text = '{"type":"ping","t":1}'.encode()
    if kind == "bad-utf8":
        payload = bytearray(text)
        at = rng.randrange(len(payload))
        payload[at:at] = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])
        return 1007, encode_frame(OP_TEXT, bytes(payload))
    if kind == "bad-utf8-fragmented":
        cut = rng.randrange(1, len(text))
        return 1007, encode_frame(OP_TEXT, text[:cut] + b"\xe2", fin=False) + encode_frame(OP_CONT, b"(" + text[cut:])
    if kind == "rsv":
        return 1002, encode_frame(OP_TEXT, text, rsv=rng.randrange(1, 8))
    if kind == "unmasked":
        return 1002, encode_frame(OP_TEXT, text, mask=False)
    if kind == "opcode":
        return 1002, encode_frame(rng.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), text)
    if kind == "fragmented-control":
        return 1002, encode_frame(OP_PING, b"x", fin=False)
    if kind == "long-control":
        return 1002, encode_frame(rng.choice([OP_PING, OP_CLOSE]), b"x" * rng.randrange(126, 200))
    if kind == "orphan-continuation":
        return 1002, encode_frame(OP_CONT, text)
    if kind == "interleaved-start":
        return 1002, encode_frame(OP_TEXT, text[:5], fin=False) + encode_frame(OP_TEXT, text[5:])
    if kind == "close-code":
        return 1002, encode_frame(OP_CLOSE, close_payload(rng.choice([0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000])))
    if kind == "close-one-byte":
        return 1002, encode_frame(OP_CLOSE, b"\x03")
    if kind == "close-reason-utf8":
        return 1007, encode_frame(OP_CLOSE, close_payload(1000, b"bye \xff"))
    if kind == "length-msb":
        return 1002, encode_frame(OP_TEXT, text, length=(1 << 63) | len(text), length_bytes=8)
    if kind == "binary":
        return 1003, encode_frame(OP_BINARY, text)
    raise AssertionError(kind)


MALFORMED_KINDS = ["bad-utf8", "bad-utf8-fragmented", "rsv", "unmasked", "opcode", "fragmented-control",
                   "long-control", "orphan-continuation", "interleaved-start", "close-code", "close-one-byte",
                   "close-reason-utf8", "length-msb", "binary"]


class MalformedFrames(unittest.TestCase):
    def test_malformed_frames_at_random_positions_get_the_spec_close_code(self):
        rng = random.Random(9)
        cases = 200
        by_code = {}
        with AdminEdge(args=["--config", edge_config_file(FAST)], shards=2) as edge:
            started = time.monotonic()
            for case in range(cases):
                kind = MALFORMED_KINDS[case % len(MALFORMED_KINDS)] if case < len(MALFORMED_KINDS) \
                    else rng.choice(MALFORMED_KINDS)
                expected, bad = malformed_frame(kind, rng)
                # The bad frame comes after 0..5 good pings, in a random TCP
                # split of the whole stream.
                good = rng.randrange(0, 6)
                stream = b"".join(encode_frame(OP_TEXT, json.dumps({"type": "ping", "t": i})) for i in range(good)) + bad
                c = SdkClient(edge)
                try:
                    cut = rng.randrange(0, len(stream) + 1)
                    c.ws.send(stream[:cut])
                    time.sleep(0.001)
                    c.ws.send(stream[cut:])
                    code, seen = c.expect_close()
                    pongs = [json.loads(f.payload)["t"] for f in seen if f.opcode == OP_TEXT]
                    self.assertEqual((code, pongs), (expected, list(range(good))), f"case {case}: {kind}")
                    by_code[code] = by_code.get(code, 0) + 1
                finally:
                    c.close()
            took = time.monotonic() - started
            upgrade_ms, rtts = ping_latencies_ms(lambda: SdkClient(edge), 20)
            self.assertTrue(edge.alive())
            figure(f"{cases} malformed frames at random positions (seed 9, {len(MALFORMED_KINDS)} kinds): "
                   + ", ".join(f"{n} closed {code}" for code, n in sorted(by_code.items()))
                   + f", every good message before them answered; {took:.1f} s; edge up, ping p99 "
                   f"{percentile(rtts, 99):.1f} ms")


class RelayNothingLost(unittest.TestCase):
    def test_every_signal_without_error_is_delivered_exactly_once(self):
        pairs, per_sender = 20, 300
        # Rate limits far above what the senders do: this test is about
        # delivery, and a sender closed with 4003 (more than 20 rate-limited
        # drops) would lose everything after it without an error per message.
        with AdminEdge(args=["--config", edge_config_file(dict(UNLIMITED_SOURCE, messages_per_second=1000000,
                                                                   message_burst=100000))], shards=2) as edge:
            async def run():
                clients = []
                for i in range(pairs * 2):
                    ws = await AsyncWs.connect(edge.host, edge.port)
                    ws.send_json({"type": "join", "streamId": f"relay-{i // 2}", "rendition": "r1", "peerId": f"p-{i}"})
                    clients.append(ws)
                for ws in clients:
                    joined = json.loads(await asyncio.wait_for(ws.recv_text(), EXPECT_TIMEOUT_S))
                    assert joined["type"] == "joined", joined
                    await asyncio.wait_for(ws.recv_text(), EXPECT_TIMEOUT_S)  # peers
                received = {i: [] for i in range(pairs * 2)}
                errors = {i: set() for i in range(pairs * 2)}

                # Every signal is delivered or answered with an error, each
                # counted once (a duplicate must not stand in for one still
                # missing): the (sender, seq) accounted for so far.
                accounted = set()

                def on_message(i, m):
                    if m["type"] == "signal":
                        received[i].append(m["data"]["seq"])
                        accounted.add((i ^ 1, m["data"]["seq"]))
                    elif m["type"] == "error":
                        errors[i].add(m.get("ref"))
                        accounted.add((i, m.get("ref")))

                readers = AccountingReaders(clients, on_message, lambda: len(accounted) >= pairs * 2 * per_sender)

                async def sender(i, ws):
                    target = i ^ 1
                    for seq in range(per_sender):
                        ws.send_text('{"type":"signal","to":"p-%d","kind":"offer","id":%d,"data":{"seq":%d}}'
                                     % (target, seq, seq))
                        if seq % 50 == 49:
                            await ws.writer.drain()
                            await asyncio.sleep(0.005)
                    await ws.writer.drain()

                started = time.monotonic()
                await asyncio.gather(*(sender(i, ws) for i, ws in enumerate(clients)))
                await readers.finish()
                took = time.monotonic() - started - NOTHING_YET_S
                for ws in clients:
                    ws.close()
                return received, errors, took

            received, errors, took = asyncio.run(run())
            sent = pairs * 2 * per_sender
            accepted = delivered = duplicates = lost = 0
            for i in range(pairs * 2):
                refused = errors[i]
                expected = [s for s in range(per_sender) if s not in refused]
                got = received[i ^ 1]
                accepted += len(expected)
                delivered += len(got)
                duplicates += len(got) - len(set(got))
                lost += len(set(expected) - set(got))
                self.assertEqual(got, expected, f"sender p-{i}: delivered != accepted (in order, once each)")
            self.assertEqual((lost, duplicates), (0, 0))
            figure(f"relay under load, {pairs} pairs on 2 shards, {sent} signals in {took:.2f} s: {accepted} accepted "
                   f"({sent - accepted} answered with an error), {delivered} delivered, 0 lost, 0 twice, in order")


class EdgeKilledBehindIngress(unittest.TestCase):
    def test_clients_of_a_sigkilled_edge_reconnect_to_the_other(self):
        clients = 40
        with contextlib.ExitStack() as stack:
            victim = stack.enter_context(BackendEdge("edge-a", args=["--config", edge_config_file(FAST)],
                                                     expect_clean_exit=False))
            survivor = stack.enter_context(BackendEdge("edge-b", args=["--config", edge_config_file(FAST)]))
            ingress = stack.enter_context(Ingress(backends=[victim.address, survivor.address]))
            ctx = trust_context()

            async def run():
                state = {}
                killed = asyncio.Event()
                done = asyncio.Event()
                all_joined = asyncio.Event()

                async def client(i):
                    peer = f"p-kill-{i}"
                    lost_at = None
                    attempts = 0
                    while not done.is_set():
                        try:
                            ws = await asyncio.wait_for(websockets.connect(
                                ingress.ws_url(), ssl=ctx, subprotocols=["meshedflow.v1"], open_timeout=EXPECT_TIMEOUT_S),
                                EXPECT_TIMEOUT_S)
                        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                            attempts += 1
                            await asyncio.sleep(0.05)
                            continue
                        try:
                            await ws.send(json.dumps({"type": "join", "streamId": f"kill-{i % 4}", "rendition": "r1",
                                                      "peerId": peer}))
                            joined = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                            if joined.get("type") != "joined":
                                raise AssertionError(f"{peer}: {joined}")
                            if lost_at is None:
                                state[i] = {"edge": joined["edge"]}
                                if len(state) == clients:
                                    all_joined.set()
                            else:
                                state[i].update(new_edge=joined["edge"], reconnect_ms=(time.monotonic() - lost_at) * 1000,
                                                attempts=attempts)
                            # Load: a ping every 20 ms until the edge goes away or the test ends.
                            t = 0
                            while not done.is_set():
                                await ws.send(json.dumps({"type": "ping", "t": t}))
                                t += 1
                                while True:
                                    m = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                                    if m.get("type") == "pong":
                                        break
                                await asyncio.sleep(0.02)
                            await ws.close()
                            return
                        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError, OSError):
                            if lost_at is None:
                                lost_at = time.monotonic()
                                state[i]["lost"] = True
                            attempts += 1
                            with contextlib.suppress(Exception):
                                await ws.close()

                tasks = [asyncio.create_task(client(i)) for i in range(clients)]
                # A client of the killed edge learns it from the tunnel's close,
                # not from a timeout: the timeouts above only bound a stall.
                try:
                    await asyncio.wait_for(all_joined.wait(), EXPECT_TIMEOUT_S)
                except asyncio.TimeoutError:
                    raise AssertionError(f"only {len(state)} of {clients} clients joined") from None
                on_victim = sum(1 for s in state.values() if s["edge"] == "edge-a")
                victim.process.send_signal(signal.SIGKILL)
                kill_at = time.monotonic()
                deadline = kill_at + EXPECT_TIMEOUT_S
                while time.monotonic() < deadline:
                    lost = [s for s in state.values() if s.get("lost")]
                    if len(lost) >= on_victim and all("new_edge" in s for s in lost):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)
                done.set()
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2 * EXPECT_TIMEOUT_S)
                return state, on_victim

            state, on_victim = asyncio.run(run())
            lost = [s for s in state.values() if s.get("lost")]
            reconnected = [s for s in lost if "new_edge" in s]
            self.assertGreater(on_victim, 0, "the ingress put no client on edge-a")
            self.assertEqual(len(lost), on_victim, "clients of the surviving edge lost their connection")
            self.assertEqual(len(reconnected), len(lost), f"some clients did not get back within {EXPECT_TIMEOUT_S} s")
            self.assertEqual({s["new_edge"] for s in reconnected}, {"edge-b"})
            times = sorted(s["reconnect_ms"] for s in reconnected)
            figure(f"edge SIGKILLed under load behind the ingress ({clients} clients pinging every 20 ms, "
                   f"{on_victim} on the killed edge): {len(lost)} lost, {len(reconnected)} reconnected to edge-b "
                   f"(median {times[len(times) // 2]:.0f} ms, max {times[-1]:.0f} ms, "
                   f"{max(s['attempts'] for s in reconnected)} attempts at most), "
                   f"{clients - on_victim} on edge-b undisturbed")


if __name__ == "__main__":
    unittest.main()
