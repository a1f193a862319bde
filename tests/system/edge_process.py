"""Helpers for the mf-edge system tests.

- Edge: starts the real mf-edge on a free loopback port (plain ws or wss),
  waits for /healthz, captures stderr, stops it (SIGTERM, clean exit asserted).
- tls_material(): a self-signed EC P-256 certificate (SAN IP:127.0.0.1 and
  DNS:localhost) generated once per run with the openssl CLI.
- encode_frame() / RawWebSocket: a tiny client-side WebSocket implementation
  on raw sockets for precise protocol tests (masking, fragmentation, reserved
  bits, arbitrary opcodes and lengths).
- http_exchange(): one raw HTTP request, the whole response, and whether the
  server closed the connection.

Only the Python standard library is used here.
"""

import atexit
import base64
import hashlib
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUBPROTOCOL = "meshedflow.v1"
# How long a test waits for something it expects (a reply, a close, a metric)
# before it calls the server hung. A passing test never waits it out, so it is
# long: a loaded 2-core machine stalls a process for seconds at times, and a
# shorter bound turns such a stall into a failure. Checks that something did
# NOT happen use their own short windows.
EXPECT_TIMEOUT_S = 20.0
# How long a check that something has NOT happened yet listens. A stalled
# machine can only make such a check pass when it should fail, never the
# reverse.
NOTHING_YET_S = 0.3
# The servers' timers round a deadline up to their next 10 ms tick
# (common/runtime/timer_wheel.h, Reactor::timer_tick_ms): a ManualClock moved one tick
# past a deadline makes it fire.
TIMER_TICK_MS = 10

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def build_dir():
    path = os.environ.get("MF_BUILD_DIR")
    if not path:
        raise RuntimeError("MF_BUILD_DIR is not set (run through tests/run_system_tests.py --build-dir DIR)")
    return path


def edge_binary():
    return os.path.join(build_dir(), "edge", "mf-edge")


# --------------------------------------------------------------------------
# Temporary files of the run (certificate, stderr logs)

_run_dir = None


def run_dir():
    global _run_dir
    if _run_dir is None:
        _run_dir = tempfile.mkdtemp(prefix="mf-system-tests-")
        if not os.environ.get("MF_KEEP_TEST_FILES"):
            atexit.register(shutil.rmtree, _run_dir, True)
    return _run_dir


_tls = None


def tls_material():
    """(certificate path, key path), generated once per run."""
    global _tls
    if _tls is None:
        directory = run_dir()
        cert = os.path.join(directory, "edge-cert.pem")
        key = os.path.join(directory, "edge-key.pem")
        result = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if result.returncode != 0:
            raise RuntimeError("openssl req failed: " + result.stdout.decode(errors="replace"))
        _tls = (cert, key)
    return _tls


def client_ssl_context(min_version=None, max_version=None, alpn=None):
    """A client context that trusts (only) the generated certificate."""
    cert, _ = tls_material()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def settle_tls13(sock, timeout=EXPECT_TIMEOUT_S):
    """See Edge.connect(settle=True). Waits for the server's first
    post-handshake record (its NewSessionTicket, sent once it has processed
    the client's Finished) and lets OpenSSL consume it. A no-op below TLS 1.3."""
    if sock.version() != "TLSv1.3":
        return
    deadline = time.monotonic() + timeout
    saved = sock.gettimeout()
    got_ticket = lambda: sock.session is not None and sock.session.has_ticket  # noqa: E731
    # A fresh handshake has no ticket yet; a resumed one already has the old one.
    resumed = sock.session_reused
    try:
        while resumed or not got_ticket():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no TLS 1.3 session ticket from the edge after the handshake")
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(1)
            except ssl.SSLWantReadError:
                resumed = False  # a post-handshake record was consumed
                continue
            finally:
                sock.settimeout(saved)
            if not data:
                return  # the edge closed; the caller will see it
            raise AssertionError(f"unexpected application data {data!r} before any request")
    finally:
        sock.settimeout(saved)


def lower_nofile(limit):
    """A preexec_fn that lowers RLIMIT_NOFILE to (limit, limit) in the child."""
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def free_port(avoid=()):
    """A port free on 127.0.0.1 now, other than those in `avoid` (the
    kernel may hand a just-released port out again: a server given the same
    port for two listeners refuses to start)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def held_port():
    """(socket, port): a port on 127.0.0.1 bound by the caller, not listening,
    until the socket is closed. Nothing else can take it meanwhile (tests run
    in parallel), so a connection to it is refused for as long as it is held:
    what a test needs to show that a server did not listen there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


# --------------------------------------------------------------------------
# The edge process

class ManualClock:
    """The servers' monotonic clock, moved by the test (builds with
    -Dtest_hooks=true; mark the test @needs_test_hooks).

        with ManualClock() as clock, AdminEdge(...) as edge:
            ...                    # no time passes for the edge's timers and rate limits
            clock.advance(500)     # now 500 ms have

    Every mf-edge or mf-ingress started inside the block reads its clock from
    the file named by MF_TEST_CLOCK_FILE (common/runtime/test_clock.h). The clock
    starts at the real monotonic time and never goes back. Servers started in
    the block should be stopped in it (list the clock first in the `with`); a
    stop that waits for a deadline (a drain, a linger) needs the clock moved
    past it: release() moves it an hour on."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="mf-clock-", dir=run_dir())
        os.close(fd)
        self.now_ms = int(time.monotonic() * 1000)
        self._write()

    def _write(self):
        # Rewritten in place as "VALUE,VALUE": a reader that races with the
        # write sees two different halves and keeps its last value.
        text = f"{self.now_ms},{self.now_ms}\n".encode()
        with open(self.path, "r+b") as f:
            f.write(text)
            f.truncate(len(text))

    def advance(self, ms):
        self.now_ms += int(ms)
        self._write()

    def __enter__(self):
        self._saved = os.environ.get("MF_TEST_CLOCK_FILE")
        os.environ["MF_TEST_CLOCK_FILE"] = self.path
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            os.environ.pop("MF_TEST_CLOCK_FILE", None)
        else:
            os.environ["MF_TEST_CLOCK_FILE"] = self._saved
        return False

    def release(self):
        """Moves the clock an hour on: every deadline of the servers passes."""
        self.advance(3600 * 1000)


class EdgeStartError(RuntimeError):
    pass


class ManagedProcess:
    """A server process started for a `with` block: its stderr goes to a run
    file (shown when the block fails); leaving the block sends SIGTERM and
    requires exit 0 within stop_timeout s (expect_clean_exit=False: it is
    killed instead, nothing asserted). Subclasses implement start()."""

    name = "process"

    def __init__(self, expect_clean_exit=True, stop_timeout=EXPECT_TIMEOUT_S):
        self.expect_clean_exit = expect_clean_exit
        self.stop_timeout = stop_timeout
        self.process = None
        self.stderr_path = None
        self._stderr_file = None
        self.exit_code = None

    def _spawn(self, argv, prefix, preexec_fn=None):
        fd, self.stderr_path = tempfile.mkstemp(prefix=prefix, suffix=".stderr", dir=run_dir())
        self._stderr_file = os.fdopen(fd, "wb")
        self.argv = argv
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                        stderr=self._stderr_file, preexec_fn=preexec_fn, close_fds=True)

    def _reap(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, timeout=5.0):
        """Exit code, or None if the process still runs after `timeout`."""
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends `sig`; returns (exit code or None if it hung, seconds taken).
        A hung process is killed."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.process.poll() is not None:
            self.exit_code = self.process.returncode
            return self.exit_code, 0.0
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.wait_exit(timeout)
        took = time.monotonic() - started
        if code is None:
            self.process.kill()
            self.process.wait(5)
        return code, took

    def kill(self):
        self._reap()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._reap()
            sys.stderr.write(f"\n--- {self.name} stderr ({self.stderr_path}) ---\n{self.stderr_tail()}\n---\n")
            return False
        if not self.expect_clean_exit:
            self._reap()
            return False
        code, took = self.stop()
        self._reap()
        if code != 0:
            raise AssertionError(
                f"{self.name} did not exit cleanly on SIGTERM: exit {code!r} after {took:.2f} s "
                f"(negative = killed by signal; None = hung past {self.stop_timeout} s and was killed)\n"
                f"{self.stderr_tail()}")
        return False

    def stderr_text(self):
        if self._stderr_file is not None:
            self._stderr_file.flush()
        if not self.stderr_path:
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr_tail(self, lines=40):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def said_serving(self, port):
        """True once this process logged its ready line naming 127.0.0.1:port.
        Readiness is proved by our own process's words, not only by an answer
        on the port: free_port() hands out a port that another test's server
        may take first, and that server's /healthz would answer for us while
        this process is still starting."""
        needle = f"127.0.0.1:{port}"
        return any("serving" in line and needle in line for line in self.stderr_text().splitlines())


class Edge(ManagedProcess):
    """Runs mf-edge for the duration of a `with` block.

    Edge(args=[...], tls=True, shards=2, preexec_fn=lower_nofile(256))
    tls: True serves the run's test certificate, (cert, key) those files;
    then trust names the PEM file clients trust (a CA).
    On leaving the block the edge gets SIGTERM and must exit 0 within EXPECT_TIMEOUT_S
    (expect_clean_exit=False: it is killed instead, nothing asserted).
    """

    name = "mf-edge"

    def __init__(self, args=(), tls=False, shards=1, preexec_fn=None, expect_clean_exit=True,
                 start_timeout=EXPECT_TIMEOUT_S, log_level="info", trust=None):
        super().__init__(expect_clean_exit=expect_clean_exit)
        self.args = list(args)
        self.tls = tls
        self.trust = trust
        self.shards = shards
        self.preexec_fn = preexec_fn
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.port = None
        self.host = "127.0.0.1"

    # -- lifecycle --

    def start(self):
        last_error = None
        # Ports the arguments already name (an admin or plain listener).
        taken = {int(m) for a in self.args for m in re.findall(r":(\d+)$", str(a))}
        for attempt in range(3):
            port = free_port(avoid=taken)
            try:
                self._start_on(port, attempt)
                return self
            except EdgeStartError as error:
                last_error = error
                text = self.stderr_text()
                self._reap()
                if "in use" not in text.lower() and "eaddrinuse" not in text.lower():
                    break
        raise last_error

    def _start_on(self, port, attempt):
        argv = [edge_binary(), "--listen", f"127.0.0.1:{port}", "--log-level", self.log_level]
        if self.shards is not None:
            argv += ["--shards", str(self.shards)]
        if self.tls:
            cert, key = self.tls if isinstance(self.tls, tuple) else tls_material()
            argv += ["--tls-cert", cert, "--tls-key", key]
        argv += self.args
        if "--admin" not in self.args:
            # Parallel edges must not share the default admin port (9445).
            argv += ["--admin", ""]
        # Connections still open when a test stops the edge drain within this
        # window (the 10 s default would make every stop take 10 s).
        if "--drain-ms" not in self.args:
            argv += ["--drain-ms", "300"]
        # Every test client connects from 127.0.0.1: per-source limits are off
        # unless a test is about them (it then passes its own values).
        if "--per-source-connections" not in self.args and not any(a == "--config" for a in self.args):
            argv += ["--per-source-connections", "0"]
        if "--per-source-rate" not in self.args and not any(a == "--config" for a in self.args):
            argv += ["--per-source-rate", "0"]
        self.port = port
        self._spawn(argv, f"edge-{port}-{attempt}-", self.preexec_fn)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EdgeStartError(f"mf-edge exited with {self.process.returncode} while starting "
                                     f"({' '.join(argv)}):\n{self.stderr_text()}")
            if not self.said_serving(port):
                time.sleep(0.02)
                continue
            try:
                response = http_exchange(self, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=1.0)
                if response.status == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.process.kill()
        raise EdgeStartError(f"mf-edge did not answer /healthz within {self.start_timeout} s:\n{self.stderr_text()}")

    # -- clients --

    def connect(self, timeout=EXPECT_TIMEOUT_S, tls=None, ssl_context=None, server_hostname="localhost", settle=True,
                session=None, source=None):
        """A connected (and, for a TLS edge, handshaken) socket.

        settle: with TLS 1.3, wait until the server's NewSessionTicket has
        arrived before returning, which proves the server has processed the
        client's Finished. This keeps the client's first application bytes
        out of the TCP read that completes the server's handshake: mf-edge
        drops such connections (a server bug, reproduced deterministically
        by test_tls.FirstRequestWithClientFinished; see there).

        source: a loopback address to connect from (e.g. "127.0.0.2"), a
        source distinct from the harness's own probes."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is None:
            tls = self.tls
        if tls:
            ctx = ssl_context
            if ctx is None and self.trust is not None:
                ctx = ssl.create_default_context(cafile=self.trust)
            ctx = ctx or client_ssl_context()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=server_hostname, session=session)
                if settle:
                    settle_tls13(sock, timeout)
            except BaseException:
                sock.close()
                raise
        return sock

    def ws_url(self, path="/ws"):
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}{path}"


# --------------------------------------------------------------------------
# HTTP

class HttpResponse:
    def __init__(self, raw, closed):
        self.raw = raw
        self.closed = closed
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"incomplete HTTP response: {raw[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line: {lines[0]!r}")
        self.status = int(parts[1])
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))
        self.body = body

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def __repr__(self):
        return f"HttpResponse({self.raw[:300]!r}, closed={self.closed})"


def read_until_eof(sock, timeout):
    """(bytes read, True if the peer closed within `timeout`). A reset after
    data counts as closed; the caller checks what it needs."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ssl.SSLError as error:
            raise ConnectionError(f"TLS error while reading: {error}") from error
        if not chunk:
            return data, True
        data += chunk


def http_exchange(edge, request, timeout=EXPECT_TIMEOUT_S, tls=None, chunks=None):
    """Sends `request` (bytes) and reads the response until the server closes."""
    sock = edge.connect(timeout=timeout, tls=tls)
    try:
        if chunks:
            for piece in chunks:
                sock.sendall(piece)
                time.sleep(0.002)
        else:
            sock.sendall(request)
        data, closed = read_until_eof(sock, timeout)
    finally:
        sock.close()
    return HttpResponse(data, closed)


# --------------------------------------------------------------------------
# WebSocket frames

def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None, length=None, length_bytes=None):
    """One client frame. rsv: 3-bit value (4 = RSV1). length: the announced
    length (defaults to len(payload)). length_bytes: force 0, 2 or 8 extended
    length bytes."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n <= 0xFFFF else 8
    if length_bytes == 0:
        header = bytes([b0, mbit | n])
    elif length_bytes == 2:
        header = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        header = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return header + key + mask_bytes(payload, key)
    return header + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        return (f"Frame(fin={self.fin}, rsv={self.rsv}, opcode={self.opcode}, masked={self.masked}, "
                f"payload={self.payload[:120]!r}{'...' if len(self.payload) > 120 else ''})")


class PeerClosed(ConnectionError):
    pass


def upgrade_request(path="/ws", key=None, subprotocols=None, extra_headers=(), host="localhost"):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    lines += list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class RawWebSocket:
    """A client WebSocket on a raw (or TLS-wrapped) socket, frame by frame."""

    def __init__(self, sock, buffered=b""):
        self.sock = sock
        self.buffer = buffered
        self.response_head = None

    @classmethod
    def connect(cls, edge, path="/ws", subprotocols=(SUBPROTOCOL,), extra_headers=(), timeout=EXPECT_TIMEOUT_S,
                head_chunks=None, pipelined=b""):
        sock = edge.connect(timeout=timeout)
        ws = cls(sock)
        try:
            ws.upgrade(path, subprotocols, extra_headers, timeout, head_chunks, pipelined)
        except BaseException:
            sock.close()
            raise
        return ws

    def upgrade(self, path="/ws", subprotocols=(SUBPROTOCOL,), extra_headers=(), timeout=EXPECT_TIMEOUT_S,
                head_chunks=None, pipelined=b""):
        request, key = upgrade_request(path, subprotocols=list(subprotocols or ()), extra_headers=extra_headers)
        if head_chunks:
            for i in range(0, len(request), head_chunks):
                self.sock.sendall(request[i:i + head_chunks])
                time.sleep(0.001)
            if pipelined:
                self.sock.sendall(pipelined)
        else:
            self.sock.sendall(request + pipelined)
        self._finish_upgrade(key, timeout)

    def _finish_upgrade(self, key, timeout=EXPECT_TIMEOUT_S):
        head = self._read_head(timeout)
        status_line = head.split(b"\r\n", 1)[0]
        if not status_line.startswith(b"HTTP/1.1 101 "):
            raise AssertionError(f"upgrade refused: {head!r}")
        self.response_head = head.decode("latin-1")
        accept = None
        for line in self.response_head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-accept":
                accept = value.strip()
        if accept != accept_for(key):
            raise AssertionError(f"bad Sec-WebSocket-Accept {accept!r} for key {key!r}")

    def response_header(self, name):
        for line in (self.response_head or "").split("\r\n")[1:]:
            n, _, value = line.partition(":")
            if n.strip().lower() == name.lower():
                return value.strip()
        return None

    def _read_head(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            self._fill(deadline)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest
        return head + b"\r\n\r\n"

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out waiting for data from the edge")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out waiting for data from the edge") from None
        if not chunk:
            raise PeerClosed("the edge closed the connection")
        self.buffer += chunk

    # -- sending --

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kwargs):
        self.sock.sendall(encode_frame(opcode, payload, **kwargs))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_fragments(self, pieces, opcode=OP_TEXT):
        data = b""
        for i, piece in enumerate(pieces):
            data += encode_frame(opcode if i == 0 else OP_CONT, piece, fin=(i == len(pieces) - 1))
        self.sock.sendall(data)

    # -- receiving --

    def recv_frame(self, timeout=EXPECT_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            frame, used = self._parse(self.buffer)
            if frame is not None:
                self.buffer = self.buffer[used:]
                return frame
            self._fill(deadline)

    @staticmethod
    def _parse(data):
        if len(data) < 2:
            return None, 0
        b0, b1 = data[0], data[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(data) < 4:
                return None, 0
            n = struct.unpack("!H", data[2:4])[0]
            pos = 4
        elif n == 127:
            if len(data) < 10:
                return None, 0
            n = struct.unpack("!Q", data[2:10])[0]
            pos = 10
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            if len(data) < pos + 4:
                return None, 0
            key = data[pos:pos + 4]
            pos += 4
        if len(data) < pos + n:
            return None, 0
        payload = data[pos:pos + n]
        if masked:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload), pos + n

    def recv_message(self, timeout=EXPECT_TIMEOUT_S, answer_pings=True):
        """The next text message (str). Server pings are answered; a close
        frame raises AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_PING and answer_pings:
                self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_CLOSE:
                raise AssertionError(f"expected a message, got a close frame: code {frame.close_code}, {frame!r}")
            if frame.opcode != OP_TEXT or not frame.fin or frame.rsv or frame.masked:
                raise AssertionError(f"expected one unmasked final text frame, got {frame!r}")
            return frame.payload.decode("utf-8")

    def expect_close(self, timeout=EXPECT_TIMEOUT_S, allow_messages=False):
        """Reads until the server's close frame; returns (code, messages seen before)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            except PeerClosed:
                raise AssertionError(f"the edge closed TCP without sending a close frame "
                                     f"(frames before: {seen!r})") from None
            except TimeoutError:
                raise AssertionError(f"no close frame within {timeout} s (frames before: {seen!r})") from None
            if frame.opcode == OP_CLOSE:
                if frame.masked or not frame.fin or frame.rsv:
                    raise AssertionError(f"malformed server close frame {frame!r}")
                return frame.close_code, seen
            if not allow_messages:
                raise AssertionError(f"expected a close frame, got {frame!r}")
            seen.append(frame)

    def wait_eof(self, timeout=EXPECT_TIMEOUT_S):
        """True if the server closes TCP (recv returns b'') within `timeout`;
        bytes received meanwhile are returned as well."""
        data, closed = read_until_eof(self.sock, timeout)
        return closed, self.buffer + data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_readable_or_eof(sockets, timeout):
    """Waits until every socket in `sockets` is closed by the peer or the
    timeout passes; returns the set of sockets that reached EOF."""
    done = set()
    deadline = time.monotonic() + timeout
    pending = list(sockets)
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
        for s in readable:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                done.add(s)
                pending.remove(s)
    return done


# --------------------------------------------------------------------------
# SDK protocol helpers (sections 3 to 8 of the spec): JSON clients, config
# and policy files, admin HTTP, Prometheus text, HS256 tokens, asyncio clients.

import asyncio  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402


def write_run_file(name, text):
    """Writes `text` to a fresh file of the run directory; returns its path."""
    fd, path = tempfile.mkstemp(prefix=name + "-", dir=run_dir())
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def rewrite_file(path, text, bump_mtime=True):
    """Rewrites `path` in place; with bump_mtime the modification time moves
    forward by at least 10 ms even on coarse file systems."""
    before = os.stat(path).st_mtime_ns
    with open(path, "w") as f:
        f.write(text)
    if bump_mtime:
        after = os.stat(path).st_mtime_ns
        if after <= before + 10_000_000:
            target = before + 20_000_000
            os.utime(path, ns=(target, target))


def edge_config_file(limits=None, extra=""):
    """A --config TOML file with the given [limits] settings (dict)."""
    lines = []
    if limits:
        lines.append("[limits]")
        for key, value in limits.items():
            lines.append(f"{key} = {value}")
    return write_run_file("edge-config.toml", "\n".join(lines) + "\n" + extra)


# Per-source limits off and a generous message budget, for tests that open
# many connections from 127.0.0.1 or send quickly.
UNLIMITED_SOURCE = {"per_source_connections": 0, "per_source_rate": 0}


class AdminEdge(Edge):
    """An Edge with its admin listener on a free port (self.admin_port) and a
    known edge id (self.edge_id)."""

    def __init__(self, args=(), edge_id="edge-test-1", admin=True, **kwargs):
        self.edge_id = edge_id
        self.admin_port = free_port() if admin else None
        extra = ["--edge-id", edge_id, "--admin", f"127.0.0.1:{self.admin_port}" if admin else ""]
        super().__init__(args=extra + list(args), **kwargs)

    def metrics(self):
        """The samples of GET /metrics: {(name, frozenset(labels.items())): value}."""
        response = admin_get(self.admin_port, "/metrics")
        if response.status != 200:
            raise AssertionError(f"/metrics answered {response.status}")
        return parse_prometheus(response.body.decode())[0]

    def metric(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())))


def admin_get(port, path, timeout=EXPECT_TIMEOUT_S):
    """GET http://127.0.0.1:PORT/PATH on the admin listener: HttpResponse."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data, closed = read_until_eof(sock, timeout)
    finally:
        sock.close()
    return HttpResponse(data, closed)


def parse_prometheus(text):
    """Prometheus text format 0.0.4: ({(name, frozenset(labels.items())): value}, {name: type}).
    Raises ValueError on a malformed line."""
    samples, types = {}, {}
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            labels_text, sep, value_text = rest.rpartition("}")
            if not sep:
                raise ValueError(f"line {number}: unbalanced braces: {line!r}")
            labels = {}
            i = 0
            while i < len(labels_text):
                if labels_text[i] in ", ":
                    i += 1
                    continue
                eq = labels_text.index("=", i)
                key = labels_text[i:eq].strip()
                if labels_text[eq + 1] != '"':
                    raise ValueError(f"line {number}: label value not quoted: {line!r}")
                j = eq + 2
                value = ""
                while labels_text[j] != '"':
                    if labels_text[j] == "\\":
                        value += {"n": "\n", "\\": "\\", '"': '"'}.get(labels_text[j + 1], labels_text[j + 1])
                        j += 2
                    else:
                        value += labels_text[j]
                        j += 1
                labels[key] = value
                i = j + 1
        else:
            name, _, value_text = line.partition(" ")
            labels = {}
        fields = value_text.split()
        if not fields:
            raise ValueError(f"line {number}: no value: {line!r}")
        value = float(fields[0])
        if not name or not all(c.isalnum() or c in "_:" for c in name):
            raise ValueError(f"line {number}: bad metric name {name!r}")
        key = (name.strip(), frozenset(labels.items()))
        if key in samples:
            raise ValueError(f"line {number}: duplicate series {line!r}")
        samples[key] = value
    return samples, types


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret, claims, alg="HS256", header=None, signature=None):
    """An HS256 JWT (or a header-only variant for alg none / bad signature)."""
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(head, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    if signature is None:
        if alg == "HS256":
            signature = b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
        else:
            signature = ""
    return signing_input + "." + signature


class SdkClient:
    """One SDK connection on a RawWebSocket: JSON in, JSON out (raw text kept)."""

    def __init__(self, edge, path="/ws", extra_headers=(), timeout=EXPECT_TIMEOUT_S):
        self.ws = RawWebSocket.connect(edge, path=path, extra_headers=extra_headers, timeout=timeout)
        self.last_raw = None

    def send(self, message):
        """A dict (compact JSON) or a str sent as is."""
        if not isinstance(message, str):
            message = json.dumps(message, separators=(",", ":"))
        self.ws.send_text(message)

    def recv_raw(self, timeout=EXPECT_TIMEOUT_S):
        self.last_raw = self.ws.recv_message(timeout)
        return self.last_raw

    def recv(self, timeout=EXPECT_TIMEOUT_S):
        return json.loads(self.recv_raw(timeout))

    def expect(self, type_, timeout=EXPECT_TIMEOUT_S):
        message = self.recv(timeout)
        if message.get("type") != type_:
            raise AssertionError(f"expected a {type_!r} message, got {self.last_raw!r}")
        return message

    def request(self, message, timeout=EXPECT_TIMEOUT_S):
        self.send(message)
        return self.recv(timeout)

    def quiet(self, timeout=0.3):
        """Every message that arrives within `timeout` (expected: none)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return seen
            try:
                seen.append(json.loads(self.ws.recv_message(left)))
            except TimeoutError:
                return seen

    def join(self, stream, rendition, peer, expect_peers=True, timeout=EXPECT_TIMEOUT_S, **fields):
        """Sends join; returns (joined, peers message or None)."""
        message = {"type": "join", "streamId": stream, "rendition": rendition, "peerId": peer}
        message.update(fields)
        self.send(message)
        joined = self.recv(timeout)
        if joined.get("type") != "joined":
            raise AssertionError(f"join {stream}/{rendition}/{peer}: expected joined, got {self.last_raw!r}")
        peers = self.expect("peers", timeout) if expect_peers else None
        return joined, peers

    def need_peers(self, timeout=EXPECT_TIMEOUT_S, **fields):
        message = {"type": "need-peers"}
        message.update(fields)
        self.send(message)
        return self.expect("peers", timeout)

    def expect_close(self, timeout=EXPECT_TIMEOUT_S, allow_messages=True):
        return self.ws.expect_close(timeout, allow_messages=allow_messages)

    def close(self):
        self.ws.close()


def joined_pair(test, edge, prefix):
    """Two SdkClients joined to one new stream (rendition r1) as
    `<tag>-a` and `<tag>-b`, closed at the test's clean-up.
    Returns (a, a's peerId, b, b's peerId)."""
    tag = f"{prefix}-{random.randrange(1 << 30)}"
    a, b = SdkClient(edge), SdkClient(edge)
    test.addCleanup(a.close)
    test.addCleanup(b.close)
    a.join(tag, "r1", f"{tag}-a")
    b.join(tag, "r1", f"{tag}-b")
    a.quiet(0.05)  # a `peers` update may follow b's join
    return a, f"{tag}-a", b, f"{tag}-b"


def peer_ids(peers_message):
    return [p["peerId"] for p in peers_message["peers"]]


# --------------------------------------------------------------------------
# asyncio WebSocket client for many connections in one process

class AsyncWs:
    """A minimal asyncio RFC 6455 client (text messages, pings answered)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.close_code = None

    @classmethod
    async def connect(cls, host, port, path="/ws", timeout=10.0):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 20), timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, key = upgrade_request(path, subprotocols=[SUBPROTOCOL])
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if not head.startswith(b"HTTP/1.1 101 "):
            writer.close()
            raise ConnectionError(f"upgrade refused: {head[:200]!r}")
        return cls(reader, writer)

    def send_text(self, text):
        self.writer.write(encode_frame(OP_TEXT, text, mask_key=b"\x00\x00\x00\x00"))

    def send_json(self, message):
        self.send_text(json.dumps(message, separators=(",", ":")))

    async def recv_text(self):
        """The next text message (str); None when the edge closed (close_code set)."""
        while True:
            head = await self.reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n) if n else b""
            opcode = head[0] & 0x0F
            if opcode == OP_PING:
                self.writer.write(encode_frame(OP_PONG, payload, mask_key=b"\x00\x00\x00\x00"))
                continue
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return None
            if opcode == OP_TEXT:
                return payload.decode()

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


class AccountingReaders:
    """Reads AsyncWs connections until every expected message is accounted
    for: on_message(index, message) is called for each text message of
    connections[index]; finish() returns once done() holds (the last
    signal delivered or answered), then listens NOTHING_YET_S longer for
    anything late (a duplicate), and stops the readers. A stalled machine
    only makes it wait longer: the bound, EXPECT_TIMEOUT_S after the last
    send, is against a hang; what is then missing the caller's assertions
    name. Start it before sending, so that no socket buffer fills."""

    def __init__(self, connections, on_message, done):
        self.done = done
        self.finished = asyncio.Event()
        self.tasks = [asyncio.create_task(self._read(i, ws, on_message)) for i, ws in enumerate(connections)]

    async def _read(self, index, ws, on_message):
        try:
            while True:
                text = await ws.recv_text()
                if text is None:
                    return
                on_message(index, json.loads(text))
                if self.done():
                    self.finished.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def finish(self, timeout=EXPECT_TIMEOUT_S):
        if self.done():
            self.finished.set()
        try:
            await asyncio.wait_for(self.finished.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(NOTHING_YET_S)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# --------------------------------------------------------------------------
# Fixtures for a whole TestCase class
# --------------------------------------------------------------------------

import contextlib  # noqa: E402
import unittest  # noqa: E402


def class_fixture(test_class, manager):
    """Enters a context manager for a whole TestCase class (setUpClass);
    it is exited in the class cleanup. Returns what it yields."""
    stack = contextlib.ExitStack()
    try:
        value = stack.enter_context(manager)
    except BaseException:
        stack.close()
        raise
    test_class.addClassCleanup(stack.close)
    return value


class SharedEdgeCase(unittest.TestCase):
    """One AdminEdge for every test of the class (self.edge), started with
    `edge_args()`: the class's LIMITS as a configuration file (None: no file)
    and its ARGS. `client()` opens an SdkClient that is closed when the test
    ends. A subclass that needs more before the edge starts (a policy file)
    sets ARGS in its own setUpClass and then calls super().setUpClass()."""
    SHARDS = 1
    TLS = False
    EDGE_ID = "edge-test-1"
    LIMITS = UNLIMITED_SOURCE
    ARGS = ()

    @classmethod
    def edge_args(cls):
        args = ["--config", edge_config_file(cls.LIMITS)] if cls.LIMITS is not None else []
        return args + list(cls.ARGS)

    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, AdminEdge(args=cls.edge_args(), shards=cls.SHARDS, tls=cls.TLS,
                                                edge_id=cls.EDGE_ID))

    def client(self):
        c = SdkClient(self.edge)
        self.addCleanup(c.close)
        return c


def sighup_reload(server, counter, timeout=EXPECT_TIMEOUT_S):
    """SIGHUP to `server` (an edge or an ingress with an admin listener and
    metrics()); waits until `counter`{result="ok"|"failed"} moves and returns
    the result that moved. Then one more /metrics: its collection round's
    requests to the shards follow the reload's messages in the same mailboxes
    (first in, first out), so once it answers every shard has applied the
    reload (docs/architecture.md, "Testing without wall-clock margins")."""
    def counts():
        samples = server.metrics()
        return {result: samples.get((counter, frozenset({"result": result}.items())), 0) for result in ("ok", "failed")}
    before = counts()
    server.process.send_signal(signal.SIGHUP)
    after = wait_until(lambda: (lambda now: now if now != before else None)(counts()), timeout,
                       lambda: f"{counter} to change after SIGHUP\n{server.stderr_tail()}")
    server.metrics()
    return "ok" if after["ok"] > before["ok"] else "failed"


def wait_until(predicate, timeout=EXPECT_TIMEOUT_S, what="condition", interval=0.05):
    """Polls predicate() until it returns a true value, which is returned;
    raises AssertionError naming `what` (a str, or a callable giving one) when
    `timeout` s pass first. The one way the system tests wait for an effect:
    the timeout is a bound for a stalled machine, never a measure of speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def wait_metric_at_least(server, name, value, what=None):
    """Waits until the counter `name` of a server with an admin listener
    (AdminEdge) reaches `value`: the event that proves the server has done
    something (accepted a connection, counted a pong)."""
    wait_until(lambda: (server.metric(name) or 0) >= value, what=f"{what or name}: {name} to reach {value}",
               interval=0.01)


def assert_cut_at_deadline(test, clock, sock, deadline_ms, what):
    """`sock` was accepted at the ManualClock's current time (the caller waited
    for the server's accept count): the server must not close it while the
    clock stands before `deadline_ms` from now, and must close it once the
    clock has passed it. Returns the bytes the server sent."""
    clock.advance(deadline_ms - 1)
    data, closed = read_until_eof(sock, NOTHING_YET_S)
    test.assertFalse(closed, f"{what}: cut before the deadline")
    clock.advance(TIMER_TICK_MS + 1)
    try:
        more, closed = read_until_eof(sock, EXPECT_TIMEOUT_S)
    except ConnectionResetError:
        more, closed = b"", True  # an abortive close is a close
    test.assertTrue(closed, f"{what}: still open after the deadline")
    return data + more
