"""Helpers for the mf-ingress system tests (reusing edge_process for the rest).

- Ingress: starts the real mf-ingress (TLS with the run's test certificate,
  or given ones) on free loopback ports, waits for its admin /healthz (or
  only for the TLS port when no backend is expected up), captures stderr,
  stops it with SIGTERM (a clean exit 0 within a bound is asserted).
  Its connect() has Edge.connect()'s shape, so RawWebSocket, SdkClient and
  http_exchange from edge_process work through the ingress unchanged.
- ingress_config_text(): the TOML file (sections as dicts, backends,
  certificates); FAST_SETTINGS keeps health checks and drains quick.
- BackendEdge / ingress_with_edges(): mf-edge processes with a plain PROXY v2
  listener (distinct --edge-id) behind one ingress.
- ProxyBackend: a backend of our own in Python that reads the PROXY v2
  header (answers health probes) and hands each tunnel to a handler
  (echo_handler, flood_handler, ...), recording what it saw.
- TlsPipe: a TLS client on ssl.MemoryBIO over a raw socket, for precise
  close_notify / TCP half-close control.
- make_certificate(): extra certificates (ECDSA or RSA, given names).
"""

import contextlib
import json
import os
import queue
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from edge_process import (EXPECT_TIMEOUT_S, sighup_reload, wait_until, AdminEdge, class_fixture, HttpResponse, ManagedProcess, admin_get, build_dir, free_port, parse_prometheus,
                          read_until_eof, rewrite_file, run_dir, tls_material, write_run_file)


def ingress_binary():
    return os.path.join(build_dir(), "ingress", "mf-ingress")


# --------------------------------------------------------------------------
# Certificates

_certificates = {}


def make_certificate(names, kind="ec", tag=""):
    """(certificate path, key path) of a self-signed certificate with CN =
    names[0] and SAN DNS = names; kind "ec" (P-256) or "rsa" (2048). Cached
    per (names, kind, tag): a different tag gives a new key pair."""
    names = tuple(names)
    key_id = (names, kind, tag)
    if key_id not in _certificates:
        directory = run_dir()
        stem = f"{names[0].replace('*', 'star')}-{kind}{'-' + tag if tag else ''}"
        cert = os.path.join(directory, stem + "-cert.pem")
        key = os.path.join(directory, stem + "-key.pem")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" else \
            ["-newkey", "rsa:2048"]
        san = ",".join(f"DNS:{n}" for n in names)
        result = subprocess.run(
            ["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert, "-days", "2",
             "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if result.returncode != 0:
            raise RuntimeError("openssl req failed: " + result.stdout.decode(errors="replace"))
        _certificates[key_id] = (cert, key)
    return _certificates[key_id]


def certificate_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def trust_context(*cert_paths, check_hostname=True):
    """A client context trusting exactly these (self-signed) certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for path in cert_paths or (tls_material()[0],):
        ctx.load_verify_locations(path)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# --------------------------------------------------------------------------
# Configuration file

# Quick health checks (a backend is down after 2 failed probes 200 ms apart,
# up after one good probe, at once at full share) and a short drain so that
# stopping an ingress with open tunnels stays well within the stop bound.
# Every test client connects from 127.0.0.1: the per-source limits (on by
# default) are off unless a test sets them.
FAST_SETTINGS = {
    "health": {"interval_ms": 200, "timeout_ms": 150, "fall": 2, "rise": 1, "slow_start_ms": 0},
    "timeouts": {"drain_deadline_ms": 1000},
    "limits": {"per_source_connections": 0, "per_source_rate": 0},
}

# The bearer token of the admin API's state changes (drain, enable): every
# generated configuration names a file holding it.
ADMIN_TOKEN = "system-test-admin-token-0123456789"
_admin_token_path = None


def admin_token_file():
    global _admin_token_path
    if _admin_token_path is None:
        _admin_token_path = write_run_file("admin-token", ADMIN_TOKEN + "\n")
    return _admin_token_path


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def ingress_config_text(settings=None, backends=(), certificates=None):
    """TOML: FAST_SETTINGS merged with `settings` ({section: {key: value}}),
    one [[backend]] per entry of `backends` (an address, or a dict of its
    keys), one [[tls.certificate]] per (cert, key) or (cert, key, OCSP response)
    of `certificates` (default: the run's test certificate)."""
    merged = {section: dict(values) for section, values in FAST_SETTINGS.items()}
    merged["admin"] = {"token_file": admin_token_file()}
    for section, values in (settings or {}).items():
        merged.setdefault(section, {}).update(values)
    lines = []
    for section, values in merged.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    for cert, key, *ocsp in (certificates if certificates is not None else [tls_material()]):
        lines += ["[[tls.certificate]]", f"certificate = {toml_value(cert)}", f"key = {toml_value(key)}"]
        lines += [f"ocsp_response = {toml_value(ocsp[0])}"] if ocsp else []
        lines.append("")
    for backend in backends:
        entry = {"address": backend} if isinstance(backend, str) else backend
        lines.append("[[backend]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Admin HTTP

def admin_request(port, method, path, timeout=EXPECT_TIMEOUT_S, token=ADMIN_TOKEN, headers=(), body=b""):
    """One request on an admin listener (a plain GET through
    edge_process.admin_get). Other methods carry `Authorization: Bearer
    token` unless token is None; `headers` are extra header lines."""
    if method == "GET" and not headers:
        return admin_get(port, path, timeout)
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(h.lower().startswith("host:") for h in headers):
        lines.append("Host: localhost")
    if token is not None and method != "GET":
        lines.append(f"Authorization: Bearer {token}")
    lines += list(headers)
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall("\r\n".join(lines).encode() + body)
        data, closed = read_until_eof(sock, timeout)
    finally:
        sock.close()
    return HttpResponse(data, closed)


# --------------------------------------------------------------------------
# The ingress process

class IngressStartError(RuntimeError):
    pass


class Ingress(ManagedProcess):
    """Runs mf-ingress for the duration of a `with` block.

    Ingress(backends=["127.0.0.1:P"], settings={"tls": {...}}, certificates=[(cert, key)],
            config=None (raw TOML text instead of settings/backends/certificates),
            args=[...] (extra flags), shards=2, wait_for="healthy" | "tls")
    Backends and certificates go into the --config file, so that reload()
    can change them (flags would override the file on every reload).
    On leaving the block the ingress gets SIGTERM and must exit 0 within
    stop_timeout s (expect_clean_exit=False: it is killed, nothing asserted).
    """

    name = "mf-ingress"

    def __init__(self, backends=(), settings=None, certificates=None, config=None, args=(), shards=2,
                 wait_for="healthy", start_timeout=EXPECT_TIMEOUT_S, stop_timeout=EXPECT_TIMEOUT_S, expect_clean_exit=True,
                 log_level="info", preexec_fn=None):
        super().__init__(expect_clean_exit=expect_clean_exit, stop_timeout=stop_timeout)
        self.preexec_fn = preexec_fn  # e.g. edge_process.lower_nofile(N)
        self.backends = list(backends)
        self.settings = settings
        self.certificates = certificates
        self.config = config
        self.args = list(args)
        self.shards = shards
        self.wait_for = wait_for
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.host = "127.0.0.1"
        self.tls = True
        self.port = None
        self.admin_port = None
        self.config_path = None

    # -- configuration --

    def config_text(self):
        if self.config is not None:
            return self.config
        return ingress_config_text(self.settings, self.backends, self.certificates)

    def rewrite_config(self, config=None, settings=None, backends=None, certificates=None):
        """Rewrites the --config file (for reload()): raw `config` text, or
        the given parts replacing the current ones."""
        if config is not None:
            self.config = config
        else:
            self.config = None
            if settings is not None:
                self.settings = settings
            if backends is not None:
                self.backends = list(backends)
            if certificates is not None:
                self.certificates = certificates
        rewrite_file(self.config_path, self.config_text())

    # -- lifecycle --

    def start(self):
        self.config_path = write_run_file("ingress-config.toml", self.config_text())
        last_error = None
        for attempt in range(3):
            try:
                self._start_on(free_port(), free_port(), attempt)
                return self
            except IngressStartError as error:
                last_error = error
                text = self.stderr_text().lower()
                self._reap()
                if "in use" not in text and "eaddrinuse" not in text:
                    break
        raise last_error

    def _start_on(self, port, admin_port, attempt):
        argv = [ingress_binary(), "--config", self.config_path, "--listen", f"127.0.0.1:{port}",
                "--admin", f"127.0.0.1:{admin_port}", "--log-level", self.log_level]
        if self.shards is not None:
            argv += ["--shards", str(self.shards)]
        argv += self.args
        self.port, self.admin_port = port, admin_port
        self._spawn(argv, f"ingress-{port}-{attempt}-", preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise IngressStartError(f"mf-ingress exited with {self.process.returncode} while starting "
                                        f"({' '.join(argv)}):\n{self.stderr_text()}")
            if not self.said_serving(port):
                time.sleep(0.02)
                continue
            try:
                if self.wait_for == "tls":
                    # Both listeners: shards bind their own, so the TLS port
                    # may accept before shard 0 has opened the admin one.
                    socket.create_connection((self.host, self.port), timeout=1.0).close()
                    socket.create_connection((self.host, self.admin_port), timeout=1.0).close()
                    return
                if admin_get(self.admin_port, "/healthz", timeout=1.0).status == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.process.kill()
        raise IngressStartError(f"mf-ingress did not become ready ({self.wait_for}) within "
                                f"{self.start_timeout} s:\n{self.stderr_text()}")

    def reload(self, timeout=EXPECT_TIMEOUT_S):
        """SIGHUP; returns "ok" or "failed" once every shard has applied it
        (edge_process.sighup_reload)."""
        return sighup_reload(self, "mf_ingress_reloads_total", timeout)

    # -- diagnostics --

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    # -- admin API --

    def admin(self, method, path, timeout=EXPECT_TIMEOUT_S, **kwargs):
        return admin_request(self.admin_port, method, path, timeout, **kwargs)

    def metrics(self):
        response = admin_get(self.admin_port, "/metrics")
        if response.status != 200:
            raise AssertionError(f"/metrics answered {response!r}")
        return parse_prometheus(response.body.decode())[0]

    def metric(self, name, samples=None, **labels):
        """The value of one series (0 if absent is NOT assumed: raises)."""
        samples = self.metrics() if samples is None else samples
        key = (name, frozenset(labels.items()))
        if key not in samples:
            raise AssertionError(f"no series {name}{labels or ''} in /metrics")
        return samples[key]

    def wait_metric(self, name, predicate, timeout=EXPECT_TIMEOUT_S, **labels):
        values = []

        def check():
            values.append(self.metric(name, **labels))
            return predicate(values[-1])
        wait_until(check, timeout, lambda: f"{name}{labels or ''} (last value {values[-1] if values else None})")
        return values[-1]

    def backend_states(self):
        """{address: the /api/backends entry}."""
        response = self.admin("GET", "/api/backends")
        if response.status != 200:
            raise AssertionError(f"/api/backends answered {response!r}")
        return {b["address"]: b for b in json.loads(response.body)["backends"]}

    def wait_backend_state(self, address, state, timeout=EXPECT_TIMEOUT_S):
        return wait_until(lambda: self.backend_states().get(address, {}).get("state") == state, timeout,
                          lambda: f"backend {address} {state}: {self.backend_states()}")

    # -- clients --

    def connect(self, timeout=EXPECT_TIMEOUT_S, tls=True, ssl_context=None, server_hostname="localhost", source=None,
                session=None, settle=False):
        """A connected, handshaken TLS socket (Edge.connect's shape; settle is
        ignored: the ingress accepts bytes riding with the client's Finished)."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not tls:
            return sock
        try:
            return (ssl_context or trust_context()).wrap_socket(sock, server_hostname=server_hostname,
                                                                session=session)
        except BaseException:
            sock.close()
            raise

    def ws_url(self, path="/ws"):
        return f"wss://localhost:{self.port}{path}"


# --------------------------------------------------------------------------
# Edges behind the ingress

class BackendEdge(AdminEdge):
    """mf-edge with a plain listener expecting PROXY v2 (the ingress's
    backend), an admin port and a known --edge-id. plain_port: reuse a port
    (an edge restarted in place)."""

    def __init__(self, edge_id, args=(), plain_port=None, shards=1, **kwargs):
        self.plain_port = plain_port or free_port()
        super().__init__(args=["--plain-listen", f"127.0.0.1:{self.plain_port}", "--proxy-protocol", *args],
                         edge_id=edge_id, shards=shards, **kwargs)

    @property
    def address(self):
        return f"127.0.0.1:{self.plain_port}"

    def connections(self):
        """mf_edge_connections from its /metrics."""
        samples, _ = parse_prometheus(admin_get(self.admin_port, "/metrics").body.decode())
        return sum(v for (name, _), v in samples.items() if name == "mf_edge_connections")


@contextlib.contextmanager
def ingress_with_edges(count=2, edge_args=(), edge_ids=None, **ingress_kwargs):
    """Yields (ingress, [BackendEdge...]): `count` edges (ids edge-a, edge-b,
    ...) behind one ingress; all stopped (cleanly) at the end."""
    edge_ids = edge_ids or [f"edge-{chr(ord('a') + i)}" for i in range(count)]
    with contextlib.ExitStack() as stack:
        edges = [stack.enter_context(BackendEdge(edge_id, args=edge_args)) for edge_id in edge_ids]
        ingress = stack.enter_context(Ingress(backends=[e.address for e in edges], **ingress_kwargs))
        yield ingress, edges


# --------------------------------------------------------------------------
# A PROXY v2 backend of our own

PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


class ProxyHeader:
    def __init__(self, command, family, source=None, destination=None, tlvs=None):
        self.command, self.family = command, family
        self.source, self.destination = source, destination
        self.tlvs = tlvs or {}

    def __repr__(self):
        return f"ProxyHeader({self.command}, {self.source} -> {self.destination}, {self.tlvs})"


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_proxy_header(sock):
    head = recv_exactly(sock, 16)
    if head[:12] != PROXY_SIGNATURE:
        raise ValueError(f"no PROXY v2 signature: {head!r}")
    version_command, family = head[12], head[13]
    if version_command >> 4 != 2:
        raise ValueError(f"PROXY version {version_command >> 4}")
    body = recv_exactly(sock, struct.unpack("!H", head[14:16])[0])
    command = "local" if version_command & 0x0F == 0 else "proxy"
    source = destination = None
    rest = body
    if family == 0x11:
        source = (socket.inet_ntoa(body[0:4]), struct.unpack("!H", body[8:10])[0])
        destination = (socket.inet_ntoa(body[4:8]), struct.unpack("!H", body[10:12])[0])
        rest = body[12:]
    elif family == 0x21:
        source = (socket.inet_ntop(socket.AF_INET6, body[0:16]), struct.unpack("!H", body[32:34])[0])
        destination = (socket.inet_ntop(socket.AF_INET6, body[16:32]), struct.unpack("!H", body[34:36])[0])
        rest = body[36:]
    tlvs = {}
    while len(rest) >= 3:
        kind, length = rest[0], struct.unpack("!H", rest[1:3])[0]
        tlvs[kind] = rest[3:3 + length]
        rest = rest[3 + length:]
    return ProxyHeader(command, family, source, destination, tlvs)


class BackendConnection:
    """One tunnel as the Python backend sees it."""

    def __init__(self, sock, header):
        self.sock, self.header = sock, header
        self.received = b""
        self.sent = 0
        self.eof = threading.Event()      # the ingress ended its direction (FIN)
        self.done = threading.Event()     # the handler returned
        self.stop = threading.Event()     # asks a flood to stop
        self.error = None
        self.lock = threading.Lock()

    def wait_received(self, needle, timeout=EXPECT_TIMEOUT_S):
        wait_until(lambda: needle in self.received, timeout,
                   lambda: f"the backend to receive {needle!r} (got {self.received[-200:]!r})")


def echo_handler(conn):
    """Echoes every byte; after the client's EOF writes b"final after your EOF\\n"
    and closes."""
    while True:
        chunk = conn.sock.recv(65536)
        if not chunk:
            conn.eof.set()
            break
        conn.received += chunk
        conn.sock.sendall(chunk)
    conn.sock.sendall(b"final after your EOF\n")
    conn.sock.close()


def shut_first_handler(conn):
    """Sends b"last words\\n", shuts its write half, then keeps reading
    until the client's EOF."""
    conn.sock.sendall(b"last words\n")
    conn.sock.shutdown(socket.SHUT_WR)
    while True:
        chunk = conn.sock.recv(65536)
        if not chunk:
            conn.eof.set()
            break
        conn.received += chunk
    conn.sock.close()


def flood_handler(total_bytes):
    """Sends `total_bytes` as fast as the tunnel takes them (conn.sent counts),
    until done, an error (the tunnel closed) or conn.stop."""
    def handler(conn):
        chunk = b"\xa5" * 65536
        conn.sock.settimeout(0.2)
        while conn.sent < total_bytes and not conn.stop.is_set():
            try:
                n = conn.sock.send(chunk[:min(len(chunk), total_bytes - conn.sent)])
            except socket.timeout:
                continue
            conn.sent += n
        conn.sock.close()
    return handler


class ProxyBackend:
    """A PROXY v2 backend on a free loopback port, one thread per connection.
    Health probes (LOCAL + GET) get 200 "ok" (unless self.healthy is False);
    each tunnel goes to handler(BackendConnection) and into self.tunnels (a
    queue, in arrival order)."""

    def __init__(self, handler=echo_handler):
        self.handler = handler
        self.healthy = True
        self.tunnels = queue.Queue()
        self.probes = 0
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._closed = True
        self.listener.close()
        self._thread.join(2)
        return False

    def next_tunnel(self, timeout=EXPECT_TIMEOUT_S):
        try:
            return self.tunnels.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no tunnel reached the Python backend within {timeout} s") from None

    def tunnel_for(self, client_address, timeout=EXPECT_TIMEOUT_S):
        """The tunnel whose PROXY header names this client (address, port);
        other tunnels taken from the queue meanwhile are dropped from it."""
        deadline = time.monotonic() + timeout
        while True:
            conn = self.next_tunnel(max(0.0, deadline - time.monotonic()))
            if conn.header.source == tuple(client_address):
                return conn

    def _accept_loop(self):
        self.listener.settimeout(0.2)
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        sock.settimeout(10)
        try:
            header = read_proxy_header(sock)
        except (OSError, ValueError, ConnectionError):
            sock.close()
            return
        if header.command == "local":
            self.probes += 1
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                status = b"200 OK" if self.healthy else b"503 Service Unavailable"
                sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            except OSError:
                pass
            sock.close()
            return
        conn = BackendConnection(sock, header)
        self.tunnels.put(conn)
        try:
            self.handler(conn)
        except OSError as error:
            conn.error = error
        finally:
            conn.done.set()
            try:
                sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# A TLS client with explicit control of close_notify and TCP half-close

class TlsPipe:
    """TLS over ssl.MemoryBIO on a raw socket. read() returns plaintext, b""
    once the server's close_notify arrived (self.close_notify = True); a TCP
    EOF without it sets self.tcp_eof and returns b"" too."""

    def __init__(self, ingress, server_hostname="localhost", ssl_context=None, timeout=EXPECT_TIMEOUT_S, source=None,
                 rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((ingress.host, ingress.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (ssl_context or trust_context()).wrap_bio(self.incoming, self.outgoing,
                                                             server_hostname=server_hostname)
        self.close_notify = False
        self.tcp_eof = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill(deadline):
                    raise ConnectionError("the ingress closed during the handshake")
        self._flush()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out reading from the ingress")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("timed out reading from the ingress") from None
        if not data:
            self.tcp_eof = True
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def read(self, timeout=EXPECT_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.obj.read(65536)
                if not data:  # SSL_ERROR_ZERO_RETURN: the peer's close_notify
                    self.close_notify = True
                return data
            except ssl.SSLWantReadError:
                if self.tcp_eof:
                    return b""
                self._flush()
                self._fill(deadline)
            except ssl.SSLZeroReturnError:
                self.close_notify = True
                return b""
            except (ssl.SSLEOFError, ssl.SSLError) as error:
                if self.tcp_eof:
                    return b""
                raise ConnectionError(f"TLS error: {error}") from error

    def read_until(self, needle, timeout=EXPECT_TIMEOUT_S):
        data = b""
        deadline = time.monotonic() + timeout
        while needle not in data:
            chunk = self.read(max(0.0, deadline - time.monotonic()))
            if not chunk:
                raise AssertionError(f"the stream ended before {needle!r} (got {data!r})")
            data += chunk
        return data

    def read_to_end(self, timeout=EXPECT_TIMEOUT_S):
        """Everything until close_notify or TCP EOF: (bytes, "close_notify" | "eof")."""
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            chunk = self.read(max(0.0, deadline - time.monotonic()))
            if not chunk:
                return data, "close_notify" if self.close_notify else "eof"
            data += chunk

    def send_close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent ours; the server's is still to come
        self._flush()

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_hello_bytes(server_hostname="localhost"):
    """A real ClientHello (the client's first flight), not sent anywhere."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = trust_context().wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def s_client(port, *options, timeout=10.0, stdin=b""):
    """Runs `openssl s_client -connect 127.0.0.1:PORT OPTIONS`: (exit code, output)."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *options],
                            input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return result.returncode, result.stdout.decode(errors="replace")
