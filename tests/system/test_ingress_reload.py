"""SIGHUP reloads under load (backends and certificate changed, nothing
dropped or refused), SIGTERM drain, and --check-config."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import websockets

from edge_process import EXPECT_TIMEOUT_S, SUBPROTOCOL, SdkClient, free_port, tls_material, write_run_file
from ingress_process import (BackendEdge, Ingress, certificate_der, class_fixture, ingress_binary,
                             ingress_config_text, make_certificate, trust_context, wait_until)

EDGE_ARGS = ["--messages-per-second", "1000", "--message-burst", "1000"]


class ReloadUnderLoad(unittest.TestCase):
    LONG_LIVED = 50
    PING_MS = 100
    RELOADS = 5

    @classmethod
    def setUpClass(cls):
        cls.a = class_fixture(cls, BackendEdge("edge-a", args=EDGE_ARGS))
        cls.b = class_fixture(cls, BackendEdge("edge-b", args=EDGE_ARGS))
        cls.cert1 = tls_material()
        cls.cert2 = make_certificate(["localhost"], "ec", tag="reloaded")
        cls.ingress = class_fixture(cls, Ingress(backends=[cls.a.address], certificates=[cls.cert1]))

    def context(self):
        return trust_context(self.cert1[0], self.cert2[0])

    async def open(self, path="/ws"):
        return await asyncio.wait_for(websockets.connect(self.ingress.ws_url(path), ssl=self.context(),
                                                         subprotocols=[SUBPROTOCOL], open_timeout=EXPECT_TIMEOUT_S,
                                                         ping_interval=None), EXPECT_TIMEOUT_S)

    def served_certificate(self):
        sock = self.ingress.connect(ssl_context=self.context())
        try:
            return sock.getpeercert(binary_form=True)
        finally:
            sock.close()

    def test_reloads_lose_no_tunnel_and_refuse_no_connection(self):
        ingress = self.ingress
        der1, der2 = certificate_der(self.cert1[0]), certificate_der(self.cert2[0])
        self.assertNotEqual(der1, der2)
        self.assertEqual(self.served_certificate(), der1)
        stats = {"pongs": [0] * self.LONG_LIVED, "gaps": [0.0] * self.LONG_LIVED, "last_pong": [0.0] * self.LONG_LIVED, "errors": [],
                 "new_ok": 0, "new_failed": [], "new_edges": [], "new_certs": []}
        steps = [
            ("unchanged", {}),
            ("second backend", {"backends": [self.a.address, self.b.address]}),
            ("new certificate", {"certificates": [self.cert2]}),
            ("first backend removed", {"backends": [self.b.address]}),
            ("first backend back", {"backends": [self.a.address, self.b.address]}),
        ]
        results = []

        async def long_lived(i, ws, stop):
            last = time.monotonic()
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    await ws.send(json.dumps({"type": "ping", "t": n}))
                    reply = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                    if reply != {"type": "pong", "t": n}:
                        stats["errors"].append(f"client {i}: {reply}")
                        return
                    now = time.monotonic()
                    stats["gaps"][i] = max(stats["gaps"][i], now - last)
                    last = now
                    stats["pongs"][i] += 1
                    stats["last_pong"][i] = now
                    await asyncio.sleep(self.PING_MS / 1000)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                stats["errors"].append(f"client {i}: {error!r}")

        async def new_connections(stop):
            n = 0
            while not stop.is_set():
                n += 1
                opened = time.monotonic()
                try:
                    ws = await self.open()
                    try:
                        der = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
                        await ws.send(json.dumps({"type": "join", "streamId": "reload", "rendition": "r1",
                                                  "peerId": f"new-{n}"}))
                        joined = json.loads(await asyncio.wait_for(ws.recv(), EXPECT_TIMEOUT_S))
                        if joined.get("type") != "joined":
                            raise AssertionError(joined)
                        done = time.monotonic()
                        stats["new_edges"].append((opened, done, joined["edge"]))
                        stats["new_certs"].append((opened, done, der))
                        stats["new_ok"] += 1
                    finally:
                        await ws.close()
                except Exception as error:  # noqa: BLE001
                    stats["new_failed"].append(repr(error))

        async def wait_async(predicate, what):
            deadline = time.monotonic() + EXPECT_TIMEOUT_S
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {EXPECT_TIMEOUT_S} s waiting for {what}")
                await asyncio.sleep(0.02)

        async def run():
            clients = await asyncio.gather(*(self.open() for _ in range(self.LONG_LIVED)))
            stop = asyncio.Event()
            tasks = [asyncio.create_task(long_lived(i, ws, stop)) for i, ws in enumerate(clients)]
            tasks.append(asyncio.create_task(new_connections(stop)))
            await asyncio.sleep(0.5)
            for what, change in steps:
                ingress.rewrite_config(**change)
                sent_at = time.monotonic()  # before SIGHUP: nothing of this step can be in effect yet
                # Returns once every shard has applied it (sighup_reload).
                result = await asyncio.to_thread(ingress.reload)
                applied_at = time.monotonic()
                results.append((what, result, applied_at, sent_at))
                # A new connection opened under this step's configuration
                # completes before the next step (what the checks below read).
                await wait_async(lambda: any(opened > applied_at for opened, _, _ in stats["new_edges"])
                                 or stats["new_failed"], "a new connection after " + what)
            # Every long-lived client is answered after the last reload.
            await wait_async(lambda: min(stats["last_pong"]) > results[-1][2] or stats["errors"],
                             "a pong for every long-lived client after the last reload")
            stop.set()
            await asyncio.gather(*tasks)
            for ws in clients:
                await ws.close()

        started = time.monotonic()
        asyncio.run(run())
        took = time.monotonic() - started
        self.assertEqual([r for _, r, _, _ in results], ["ok"] * self.RELOADS, results)
        self.assertEqual(stats["errors"], [], "long-lived clients lost their tunnel or a pong")
        self.assertEqual(stats["new_failed"], [], "new connections failed during reloads")
        # Every long-lived client was answered until the end (its last ping
        # came after the last reload); how long it waited at worst depends on
        # the machine's load, so it is printed, not asserted.
        for i, pongs in enumerate(stats["pongs"]):
            self.assertGreater(stats["last_pong"][i], results[-1][2], f"client {i}: no pong after the last reload")
        print(f"\n    {self.RELOADS} reloads in {took:.1f} s: {sum(stats['pongs'])} pongs, longest wait for one "
              f"{max(stats['gaps']) * 1000:.0f} ms; {stats['new_ok']} new connections, none refused", flush=True)
        self.assertGreater(stats["new_ok"], 10, "the new-connection loop hardly ran")
        # Connections opened once every shard had the new certificate see
        # it; those done before the SIGHUP saw the old one.
        cert_reload_at = results[2][2]
        certs_after = [der for opened, _, der in stats["new_certs"] if opened > cert_reload_at]
        self.assertTrue(certs_after, "no new connection after the certificate reload")
        self.assertEqual(set(certs_after), {der2})
        certs_before = [der for _, done, der in stats["new_certs"] if done < results[2][3]]
        self.assertEqual(set(certs_before), {der1})
        # While edge-a was out of the list, new tunnels went to edge-b only.
        removed_at, back_at = results[3][2], results[4][3]
        edges_between = [e for opened, done, e in stats["new_edges"] if removed_at < opened and done < back_at]
        self.assertTrue(edges_between)
        self.assertEqual(set(edges_between), {"edge-b"})
        edges_before = [e for _, done, e in stats["new_edges"] if done < results[1][3]]
        self.assertEqual(set(edges_before), {"edge-a"})
        self.assertEqual(self.served_certificate(), der2)
        states = ingress.backend_states()
        self.assertEqual(sorted(b["address"] for b in states.values() if not b.get("removed")),
                         sorted([self.a.address, self.b.address]))

    def test_bad_file_keeps_the_old_configuration(self):
        with Ingress(backends=[self.a.address]) as ingress:
            client = SdkClient(ingress)
            self.addCleanup(client.close)
            ingress.rewrite_config(certificates=[("/nonexistent/cert.pem", "/nonexistent/key.pem")])
            self.assertEqual(ingress.reload(), "failed")
            good = ingress_config_text(backends=[self.a.address])
            self.assertIn("interval_ms = 200", good)
            ingress.rewrite_config(config=good.replace("interval_ms = 200", "interval_ms = 5"))
            self.assertEqual(ingress.reload(), "failed")
            self.assertTrue(ingress.alive())
            client.send({"type": "ping", "t": 5})
            self.assertEqual(client.expect("pong"), {"type": "pong", "t": 5})
            other = SdkClient(ingress)  # the old certificate still serves new clients
            self.addCleanup(other.close)
            other.send({"type": "ping", "t": 6})
            self.assertEqual(other.expect("pong"), {"type": "pong", "t": 6})
            self.assertEqual(ingress.metric("mf_ingress_reloads_total", result="failed"), 2)
            ingress.rewrite_config(config=good)
            self.assertEqual(ingress.reload(), "ok")
            client.close()
            other.close()


class Sigterm(unittest.TestCase):
    def test_sigterm_drains_open_tunnels_then_exits(self):
        with BackendEdge("edge-a", args=EDGE_ARGS) as edge:
            ingress = Ingress(backends=[edge.address], settings={"timeouts": {"drain_deadline_ms": 1500}})
            with ingress:
                client = SdkClient(ingress)
                self.addCleanup(client.close)
                started = time.monotonic()
                ingress.process.send_signal(signal.SIGTERM)
                # The tunnel still works (asked first, well inside the 1.5 s
                # deadline); the listener closes (checked last, so that the
                # rest is asserted too; the wait is only against a hang).
                client.send({"type": "ping", "t": 1})
                self.assertEqual(client.expect("pong"), {"type": "pong", "t": 1})
                try:
                    wait_until(lambda: not _accepts(ingress.port), EXPECT_TIMEOUT_S, "the listener to close")
                    listener_closed = True
                except AssertionError:
                    listener_closed = False
                # The client closes as soon as the ingress ends the tunnel
                # (so that no linger for its EOF adds to the exit time).
                eof = {}

                def reader():
                    eof["closed"], _ = client.ws.wait_eof(30.0)  # only against a hang
                    eof["at"] = time.monotonic()
                    client.close()
                thread = threading.Thread(target=reader)
                thread.start()
                code = ingress.process.wait(30)  # only against a hang
                took = time.monotonic() - started
                thread.join(31)
                self.assertEqual(code, 0, ingress.stderr_tail())
                self.assertTrue(eof.get("closed"), "the tunnel was not closed at the drain deadline")
                # Never before the deadline (measured from before SIGTERM);
                # closed by it, since this client would hold the tunnel open
                # for ever; how long after it is a figure.
                self.assertGreater(eof["at"] - started, 1.5 - 0.05, "the tunnel was closed before the drain deadline")
                print(f"drain: tunnel closed {eof['at'] - started:.2f} s after SIGTERM (deadline 1.5 s), "
                      f"exit after {took:.2f} s", flush=True)
                self.assertTrue(listener_closed, "after SIGTERM the TLS port still accepts connections")


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class CheckConfig(unittest.TestCase):
    def run_check(self, config_text, *flags):
        path = write_run_file("ingress-check.toml", config_text)
        result = subprocess.run([ingress_binary(), "--config", path, "--check-config", *flags],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return result.returncode, result.stdout.decode(), result.stderr.decode(), path

    def test_prints_the_effective_configuration(self):
        cert, key = tls_material()
        port, admin = free_port(), free_port()
        code, out, err, _ = self.run_check(
            ingress_config_text(backends=["127.0.0.1:1"]), "--backend", "127.0.0.1:7001", "--backend",
            "127.0.0.1:7002", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--shards", "3",
            "--balance", "stream-affinity")
        self.assertEqual(code, 0, err)
        self.assertIn("configuration ok", out)
        self.assertIn('address = "127.0.0.1:7001"', out)
        self.assertIn('address = "127.0.0.1:7002"', out)
        self.assertNotIn('"127.0.0.1:1"', out, "--backend replaces the file's backends")
        self.assertIn(f'address = "127.0.0.1:{port}"', out)
        self.assertIn("shards = 3", out)
        self.assertIn('mode = "stream-affinity"', out)
        self.assertIn("interval_ms = 200", out, "the file's own settings")
        self.assertIn(f'certificate = "{cert}"', out)
        self.assertFalse(_accepts(port), "--check-config must not serve")

    def assert_one_line_failure(self, code, out, err, *needles):
        self.assertNotEqual(code, 0)
        lines = [line for line in err.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got {err!r}")
        for needle in needles:
            self.assertIn(needle, lines[0])
        self.assertNotIn("configuration ok", out)

    def test_missing_backend(self):
        self.assert_one_line_failure(*self.run_check(ingress_config_text())[:3], "backend")

    def test_bad_certificate_path(self):
        code, out, err, _ = self.run_check(ingress_config_text(
            backends=["127.0.0.1:7001"], certificates=[("/nonexistent/c.pem", tls_material()[1])]))
        self.assert_one_line_failure(code, out, err, "/nonexistent/c.pem")

    def test_key_not_matching_certificate(self):
        other = make_certificate(["b.test"], "rsa")
        code, out, err, _ = self.run_check(ingress_config_text(
            backends=["127.0.0.1:7001"], certificates=[(tls_material()[0], other[1])]))
        self.assert_one_line_failure(code, out, err)

    def test_unknown_key_and_bad_value_name_the_line(self):
        text = ingress_config_text(backends=["127.0.0.1:7001"])
        for bad in ("[limits]\nmax_conections = 5\n", "[balance]\nmode = \"random\"\n"):
            with self.subTest(bad=bad):
                code, out, err, path = self.run_check(bad + text)
                self.assert_one_line_failure(code, out, err, os.path.basename(path))


if __name__ == "__main__":
    unittest.main()
