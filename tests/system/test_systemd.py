"""systemd integration: the units verify cleanly, and mf-edge speaks the
notify protocol (sd_notify(3)) to a test NOTIFY_SOCKET: READY=1 once it
serves, WATCHDOG=1 while its shards turn, RELOADING=1 (with MONOTONIC_USEC)
then READY=1 on SIGHUP, STOPPING=1 on SIGTERM; mf-sign --watch sends READY=1
once it watches, WATCHDOG=1 while its loop turns, STOPPING=1 on SIGTERM."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from edge_process import EXPECT_TIMEOUT_S, Edge, RawWebSocket, build_dir, free_port, held_port, tls_material
from ingress_process import Ingress, ingress_binary, trust_context

from build_options import needs_test_hooks

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mf-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def receive(self, until, timeout):
        """Collects datagrams until one contains `until` (a line) or timeout."""
        return self._receive_until(lambda data: until in data.split("\n"), timeout,
                                   lambda: f"no {until!r} within {timeout}s; got {self.messages!r}")

    def receive_containing(self, text, timeout):
        """Collects datagrams until one contains `text` anywhere."""
        return self._receive_until(lambda data: text in data, timeout,
                                   lambda: f"no datagram with {text!r} within {timeout}s; got {self.messages[-5:]!r}")

    def _receive_until(self, matches, timeout, failure):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(data)
            if matches(data):
                return data
        raise AssertionError(failure())

    def recv_stamped(self):
        """(datagram text, the kernel's arrival time in seconds) or None on
        timeout. The arrival time is when the sender's datagram was queued,
        whenever this process gets to read it (SO_TIMESTAMPNS)."""
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
        except socket.timeout:
            return None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                return data.decode(), seconds + nanoseconds / 1e9
        raise AssertionError("the kernel gave no arrival time for a datagram")

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NotifyProtocol(unittest.TestCase):
    def setUp(self):
        self.notify = NotifySocket()
        self.addCleanup(self.notify.close)
        self.saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        os.environ["NOTIFY_SOCKET"] = self.notify.path
        os.environ["WATCHDOG_USEC"] = "400000"  # ping every 200 ms
        os.environ.pop("WATCHDOG_PID", None)
        self.addCleanup(self.restore)

    def restore(self):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def test_ready_watchdog_reload_stop(self):
        with Edge(shards=2) as edge:
            ready = self.notify.receive("READY=1", 5)
            self.assertIn("STATUS=serving", ready)
            # Several watchdog pings: each means both shards answered a probe.
            for _ in range(3):
                self.notify.receive("WATCHDOG=1", 2)
            # STATUS= carries the live connection count with the pings.
            self.notify.receive_containing(", 0 connections", 2)
            ws = RawWebSocket(edge.connect())
            ws.upgrade()
            self.notify.receive_containing(", 1 connections", 2)
            ws.close()
            edge.send_signal(signal.SIGHUP)
            reloading = self.notify.receive("RELOADING=1", 3)
            self.assertRegex(reloading, r"MONOTONIC_USEC=\d+")
            self.notify.receive("READY=1", 3)
            edge.send_signal(signal.SIGTERM)
            self.notify.receive("STOPPING=1", 3)
            self.assertEqual(edge.wait_exit(5.0), 0)

    def test_ready_comes_after_the_edge_serves(self):
        with Edge(shards=1) as edge:
            self.notify.receive("READY=1", 5)
            # READY=1 means serving: a health check works at once.
            with socket.create_connection((edge.host, edge.port), timeout=EXPECT_TIMEOUT_S) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))

    @needs_test_hooks
    def test_a_stalled_shard_stops_the_watchdog_pings(self):
        # Shard 1 blocks its loop for 2 s, 1.5 s after start (a hook compiled
        # only with -Dtest_hooks=true). Pings every 200 ms must stop meanwhile
        # (systemd would restart a service stuck longer than WatchdogSec) and
        # come back once the shard turns again. Pings are collected until the
        # edge logged the end of the stall and a ping arrived after that, and
        # gaps are measured on the kernel's arrival times, so a slow reader
        # cannot shrink them. A ping needs every shard to have turned since
        # the previous one, so during a 2 s stall at most one ping leaves
        # (the one whose check preceded the stall): the largest gap is the
        # stall less one ping interval unless shard 0 itself was also held up
        # for most of the stall; half the stall is the bound.
        stall_ms = 2000
        os.environ["MF_TEST_STALL_SHARD"] = f"1:1500:{stall_ms}"
        self.addCleanup(os.environ.pop, "MF_TEST_STALL_SHARD", None)
        with Edge(shards=2) as edge:
            self.notify.receive("READY=1", 5)
            pings, resumed_at = [], None
            give_up = time.monotonic() + 60.0  # only against a hang; a working edge ends the loop long before
            self.notify.sock.settimeout(0.1)
            while time.monotonic() < give_up:
                stamped = self.notify.recv_stamped()
                if stamped and "WATCHDOG=1" in stamped[0].split("\n"):
                    pings.append(stamped[1])
                if resumed_at is None and "test hook: shard 1 resumes" in edge.stderr_text():
                    resumed_at = time.time()
                if resumed_at is not None and pings and pings[-1] > resumed_at:
                    break
            self.assertIn("test hook: shard 1 stalls", edge.stderr_text(),
                          "the stall hook did not run: is this build configured with -Dtest_hooks=true?")
            self.assertIsNotNone(resumed_at, "the stalled shard never resumed")
            self.assertTrue(pings and pings[-1] > resumed_at, "the pings did not come back after the stall")
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            self.assertGreaterEqual(max(gaps), stall_ms / 1000 / 2,
                                    f"no pause in the pings while a shard stalled: gaps {gaps}")

    def test_ingress_ready_watchdog_reload_stop(self):
        with Edge(shards=1, args=["--plain-listen", f"127.0.0.1:{free_port()}", "--proxy-protocol"]) as edge:
            backend = edge.args[edge.args.index("--plain-listen") + 1]
            with Ingress(backends=[backend], shards=2) as ingress:
                ready = self.notify.receive("READY=1", 5)
                self.assertIn("STATUS=serving", ready)
                for _ in range(3):
                    self.notify.receive("WATCHDOG=1", 2)
                ingress.send_signal(signal.SIGHUP)
                reloading = self.notify.receive("RELOADING=1", 3)
                self.assertRegex(reloading, r"MONOTONIC_USEC=\d+")
                self.notify.receive("READY=1", 3)
                ingress.send_signal(signal.SIGTERM)
                self.notify.receive("STOPPING=1", 3)
                self.assertEqual(ingress.wait_exit(5.0), 0)

    def test_sign_ready_watchdog_stop(self):
        binary = os.path.join(build_dir(), "origin", "mf-sign")
        directory = tempfile.mkdtemp(prefix="mf-sign-notify-")
        self.addCleanup(shutil.rmtree, directory, True)
        key = os.path.join(directory, "key.pem")
        subprocess.run([binary, "--generate-key", key], check=True, capture_output=True, timeout=10)
        stream = os.path.join(directory, "live")
        os.mkdir(stream)
        process = subprocess.Popen([binary, "--key", key, "--dir", stream, "--watch"], stderr=subprocess.PIPE)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        ready = self.notify.receive("READY=1", 5)
        self.assertIn(f"STATUS=watching {stream}", ready)
        for _ in range(3):
            self.notify.receive("WATCHDOG=1", 2)
        process.send_signal(signal.SIGTERM)
        self.notify.receive("STOPPING=1", 3)
        self.assertEqual(process.wait(timeout=EXPECT_TIMEOUT_S), 0, process.stderr.read().decode(errors="replace"))

    def test_no_watchdog_pings_without_watchdog_usec(self):
        os.environ.pop("WATCHDOG_USEC")
        with Edge(shards=1):
            self.notify.receive("READY=1", 5)
            time.sleep(0.6)
            self.notify.sock.settimeout(0.1)
            late = []
            try:
                while True:
                    late.append(self.notify.sock.recv(4096).decode())
            except socket.timeout:
                pass
            self.assertFalse(any("WATCHDOG=1" in m for m in late), late)


HARDENING = ("Type=notify", "WatchdogSec=", "ExecReload=", "LimitNOFILE=1048576", "DynamicUser=yes",
             "NoNewPrivileges=yes", "ProtectSystem=strict", "SystemCallFilter=@system-service",
             "MemoryDenyWriteExecute=yes", "RestrictAddressFamilies=")


def connect_when_listening(port, timeout=5.0):
    """A connection to 127.0.0.1:port, retried until the listener exists."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=EXPECT_TIMEOUT_S)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class UnitFiles(unittest.TestCase):
    def verify_unit(self, built_unit, binary, socket_template, service_name, socket_name, needed=HARDENING):
        """The built unit holds `needed`, and `systemd-analyze verify` accepts
        it (with its socket unit, if it has one) without a warning."""
        unit = os.path.join(build_dir(), "systemd", built_unit)
        self.assertTrue(os.path.exists(unit), unit)
        with open(unit) as f:
            text = f.read()
        for line in needed:
            self.assertIn(line, text)
        directory = tempfile.mkdtemp(prefix="mf-unit-")
        self.addCleanup(shutil.rmtree, directory, True)
        # The installed path does not exist here: point ExecStart at the build.
        lines = []
        for line in text.splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                key, _, rest = line.partition("=")
                line = f"{key}={binary} {rest.split(' ', 1)[1]}"
            lines.append(line)
        path = os.path.join(directory, service_name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        units = [path]
        if socket_template:
            socket_unit = os.path.join(directory, socket_name)
            shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "systemd", socket_template), socket_unit)
            units.insert(0, socket_unit)
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stderr)
        # Warnings (unknown keys, bad values) come with status 0: none allowed.
        self.assertEqual((done.stdout + done.stderr).strip(), "")

    def test_edge_unit_verifies_cleanly(self):
        self.verify_unit("mf-edge@.service", os.path.join(build_dir(), "edge", "mf-edge"), "mf-edge@.socket",
                         "mf-edge@test.service", "mf-edge@test.socket")

    def test_ingress_units_verify_cleanly(self):
        self.verify_unit("mf-ingress.service", ingress_binary(), "mf-ingress.socket", "mf-ingress.service",
                         "mf-ingress.socket", needed=HARDENING + ("--check-config",))

    def test_sign_unit_verifies_cleanly(self):
        # No socket, no reload, few descriptors; no network at all, and the
        # key reaches it as a credential.
        needed = tuple(line for line in HARDENING if line not in ("ExecReload=", "LimitNOFILE=1048576")) + (
            "--check-config", "--watch", "--dir /%I", "PrivateNetwork=yes", "ReadWritePaths=/%I",
            "LoadCredential=sign-key.pem:", "--key ${CREDENTIALS_DIRECTORY}/sign-key.pem", "CapabilityBoundingSet=\n")
        self.verify_unit("mf-sign@.service", os.path.join(build_dir(), "origin", "mf-sign"), None,
                         "mf-sign@srv-hls-live.service", None, needed=needed)

    def test_every_unit_is_verified(self):
        units = sorted(name for name in os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "systemd"))
                       if name.endswith((".service.in", ".service", ".socket")))
        self.assertEqual(units, ["mf-edge@.service.in", "mf-edge@.socket", "mf-ingress.service.in",
                                 "mf-ingress.socket", "mf-sign@.service.in"],
                         "a new unit needs its test_*_verif* above")


class SocketActivation(unittest.TestCase):
    def test_inherited_listener_serves_from_the_first_connection(self):
        # Held by the test: no other test's server can listen there meanwhile.
        holder, unused = held_port()
        self.addCleanup(holder.close)
        port = free_port(avoid=(unused,))
        binary = os.path.join(build_dir(), "edge", "mf-edge")
        # systemd-socket-activate listens, and on the first connection starts
        # mf-edge with the listening socket as descriptor 3, named "public".
        process = subprocess.Popen(
            ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=public", binary,
             "--listen", f"127.0.0.1:{unused}", "--admin", "", "--shards", "2", "--drain-ms", "200",
             "--per-source-connections", "0", "--per-source-rate", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        sock = connect_when_listening(port)
        ws = RawWebSocket(sock)
        self.addCleanup(ws.close)
        ws.upgrade()
        ws.send_text('{"type":"ping","t":1}')
        self.assertEqual(ws.recv_message(), '{"type":"pong","t":1}')
        # A second connection lands on the same inherited listener.
        second = RawWebSocket(socket.create_connection(("127.0.0.1", port), timeout=EXPECT_TIMEOUT_S))
        self.addCleanup(second.close)
        second.upgrade()
        second.send_text('{"type":"ping","t":2}')
        self.assertEqual(second.recv_message(), '{"type":"pong","t":2}')
        # The --listen address was not bound: the inherited socket replaced it.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", unused), timeout=1).close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=EXPECT_TIMEOUT_S), 0, process.stderr.read().decode(errors="replace")[-2000:])

    def test_ingress_serves_on_the_inherited_listener(self):
        # Held by the test: no other test's server can listen there meanwhile.
        holder, unused = held_port()
        self.addCleanup(holder.close)
        port = free_port(avoid=(unused,))
        cert, key = tls_material()
        with Edge(shards=1, args=["--plain-listen", f"127.0.0.1:{free_port()}", "--proxy-protocol"]) as edge:
            backend = edge.args[edge.args.index("--plain-listen") + 1]
            process = subprocess.Popen(
                ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=public", ingress_binary(),
                 "--listen", f"127.0.0.1:{unused}", "--admin", "", "--shards", "2", "--tls-cert", cert,
                 "--tls-key", key, "--backend", backend],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.addCleanup(lambda: process.poll() is None and process.kill())
            context = trust_context(cert)
            clients = []
            for n in (1, 2):
                sock = connect_when_listening(port)
                tls = context.wrap_socket(sock, server_hostname="localhost")
                ws = RawWebSocket(tls)
                clients.append(ws)
                ws.upgrade()
                ws.send_text('{"type":"ping","t":%d}' % n)
                self.assertEqual(ws.recv_message(), '{"type":"pong","t":%d}' % n)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", unused), timeout=1).close()
            # Open tunnels would hold the drain until its 30 s deadline.
            for ws in clients:
                ws.close()
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(timeout=8), 0, process.stderr.read().decode(errors="replace")[-2000:])
            # The activated socket is systemd's (here systemd-socket-activate
            # exited with its child): what matters is that the drain did not
            # shut it down for the next instance, checked by its exit code 0.

    def test_unknown_socket_name_is_refused(self):
        port = free_port()
        binary = os.path.join(build_dir(), "edge", "mf-edge")
        process = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=bogus", binary,
                                    "--admin", ""], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        connect_when_listening(port).close()
        code = process.wait(timeout=EXPECT_TIMEOUT_S)
        self.assertNotEqual(code, 0)
        self.assertIn("unknown socket name 'bogus'", process.stderr.read().decode(errors="replace"))


if __name__ == "__main__":
    unittest.main()
