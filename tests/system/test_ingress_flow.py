"""Bytes through a tunnel, with our own PROXY v2 backend in Python: half-close
in both directions, and a reader that never reads (bounded memory, flow
control)."""

import socket
import ssl
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, read_until_eof

from ingress_process import (Ingress, ProxyBackend, TlsPipe, echo_handler, flood_handler, shut_first_handler,
                             wait_until)


class HalfClose(unittest.TestCase):
    def test_client_eof_reaches_backend_which_can_still_send(self):
        with ProxyBackend(echo_handler) as backend, Ingress(backends=[backend.address]) as ingress:
            for how in ("close_notify", "close_notify+SHUT_WR"):
                with self.subTest(how=how):
                    client = TlsPipe(ingress)
                    self.addCleanup(client.close)
                    client.send(b"hello\n")
                    self.assertEqual(client.read_until(b"hello\n"), b"hello\n")
                    tunnel = backend.tunnel_for(client.sock.getsockname())
                    client.send_close_notify()
                    if how.endswith("SHUT_WR"):
                        client.shutdown_write()
                    self.assertTrue(tunnel.eof.wait(3), "the client's close_notify did not reach the backend as EOF")
                    # The backend answers after the client's EOF; the client still reads it.
                    data, end = client.read_to_end()
                    self.assertEqual(data, b"final after your EOF\n")
                    self.assertEqual(end, "close_notify", "the backend's close must reach the client as close_notify")
                    self.assertEqual(tunnel.received, b"hello\n")
                    client.close()  # (a closing ingress socket lingers until the client's EOF)
            wait_until(lambda: ingress.metric("mf_ingress_tunnels_active") == 0, EXPECT_TIMEOUT_S, "the tunnels to end")

    def test_backend_eof_reaches_client_which_can_still_send(self):
        with ProxyBackend(shut_first_handler) as backend, Ingress(backends=[backend.address]) as ingress:
            client = TlsPipe(ingress)
            self.addCleanup(client.close)
            client.send(b"first\n")  # the tunnel opens
            tunnel = backend.tunnel_for(client.sock.getsockname())
            data, end = client.read_to_end()
            self.assertEqual(data, b"last words\n")
            self.assertEqual(end, "close_notify", "the backend's EOF must reach the client as close_notify")
            self.assertFalse(client.tcp_eof or tunnel.eof.is_set(), "the other direction must stay open")
            # The client still sends; the backend still receives.
            for i in range(3):
                client.send(b"after %d\n" % i)
                tunnel.wait_received(b"after %d\n" % i)
            self.assertFalse(tunnel.eof.is_set())
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active"), 1)
            client.send_close_notify()
            self.assertTrue(tunnel.eof.wait(3), "the client's close_notify did not reach the backend as EOF")
            self.assertEqual(tunnel.received, b"first\nafter 0\nafter 1\nafter 2\n")
            wait_until(lambda: ingress.metric("mf_ingress_tunnels_active") == 0, EXPECT_TIMEOUT_S, "the tunnel to end")
            rest, closed = read_until_eof(client.sock, 3.0)
            self.assertEqual((rest, closed), (b"", True), "the client's TCP connection ends after both directions")
            client.close()

    def test_plain_tcp_eof_without_close_notify_ends_the_client_side(self):
        # A client that only shuts TCP (no close_notify): the backend still
        # sees the end of the client's direction.
        with ProxyBackend(echo_handler) as backend, Ingress(backends=[backend.address]) as ingress:
            client = TlsPipe(ingress)
            self.addCleanup(client.close)
            client.send(b"x\n")
            client.read_until(b"x\n")
            tunnel = backend.tunnel_for(client.sock.getsockname())
            client.shutdown_write()
            self.assertTrue(tunnel.eof.wait(3), "TCP EOF from the client did not reach the backend")
            self.assertTrue(tunnel.done.wait(3))


class SlowReader(unittest.TestCase):
    FLOOD = 200 * 1024 * 1024
    RSS_MARGIN_KB = 64 * 1024

    def test_reader_that_never_reads_keeps_memory_bounded(self):
        with ProxyBackend(flood_handler(self.FLOOD)) as backend, Ingress(backends=[backend.address]) as ingress:
            baseline = ingress.rss_kb()
            client = TlsPipe(ingress, rcvbuf=65536)
            self.addCleanup(client.close)
            client.send(b"go\n")
            tunnel = backend.tunnel_for(client.sock.getsockname())
            self.addCleanup(tunnel.stop.set)
            # Let the flood push until the whole path is full and stalls.
            peak = baseline
            last_sent, stalled_since = -1, None
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                peak = max(peak, ingress.rss_kb())
                if tunnel.sent == last_sent:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 1.0:
                        break
                else:
                    last_sent, stalled_since = tunnel.sent, None
                time.sleep(0.05)
            self.assertIsNotNone(stalled_since, f"the flood never stalled ({tunnel.sent} bytes sent)")
            self.assertLess(tunnel.sent, 64 * 1024 * 1024,
                            "the ingress took far more than its buffers from a backend whose client never reads")
            self.assertLess(peak - baseline, self.RSS_MARGIN_KB,
                            f"ingress RSS grew from {baseline} kB to {peak} kB")
            self.assertGreater(ingress.metric("mf_ingress_flow_pauses_total"), 0)
            self.assertFalse(tunnel.done.is_set(),
                             f"the ingress closed the tunnel after {tunnel.sent} bytes: a client that does not "
                             f"read must be paused (flow control), not dropped")
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active"), 1)
            # Reading again resumes the flood: the bytes are intact.
            before = tunnel.sent
            got = b""
            while len(got) < 4 * 1024 * 1024:
                chunk = client.read(3)
                self.assertTrue(chunk, "the stream ended while the client read")
                self.assertEqual(chunk.strip(b"\xa5"), b"", "bytes changed on the way")
                got += chunk
            wait_until(lambda: tunnel.sent > before, EXPECT_TIMEOUT_S, "the flood to resume once the client reads")
            # The client goes away: the tunnel and the backend connection end.
            client.close()
            self.assertTrue(tunnel.done.wait(5), "the backend connection outlived its client")
            wait_until(lambda: ingress.metric("mf_ingress_tunnels_active") == 0, EXPECT_TIMEOUT_S, "the tunnel to end")
            self.assertLess(tunnel.sent, self.FLOOD)

    def test_sender_that_floods_a_backend_that_never_reads(self):
        # The other direction: the backend stops reading, the client keeps
        # sending; the ingress pauses the client.
        def never_read(conn):
            conn.stop.wait(10)

        with ProxyBackend(never_read) as backend, Ingress(backends=[backend.address]) as ingress:
            baseline = ingress.rss_kb()
            client = ingress.connect()
            self.addCleanup(client.close)
            client.sendall(b"start")
            tunnel = backend.tunnel_for(client.getsockname())
            self.addCleanup(tunnel.stop.set)
            client.settimeout(1.0)
            chunk = b"z" * 65536
            sent, stalled_since = 0, None
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and sent < 200 * 1024 * 1024:
                try:
                    client.sendall(chunk)
                except socket.timeout:
                    stalled_since = time.monotonic()
                    break
                except (ssl.SSLError, ConnectionError) as error:
                    self.fail(f"the ingress closed the tunnel after {sent} bytes from the client ({error}): a "
                              f"backend that does not read must pause the client (flow control), not drop it")
                sent += len(chunk)
            self.assertIsNotNone(stalled_since, f"the client was never held back ({sent} bytes sent)")
            self.assertLess(sent, 64 * 1024 * 1024)
            self.assertLess(ingress.rss_kb() - baseline, self.RSS_MARGIN_KB)
            self.assertGreater(ingress.metric("mf_ingress_flow_pauses_total"), 0)
            self.assertEqual(ingress.metric("mf_ingress_tunnels_active"), 1)
            tunnel.stop.set()
            client.close()
            wait_until(lambda: ingress.metric("mf_ingress_tunnels_active") == 0, EXPECT_TIMEOUT_S, "the tunnel to end")


if __name__ == "__main__":
    unittest.main()
