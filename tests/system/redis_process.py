"""A real redis-server for the cluster tests (Redis 7 speaks what Valkey
speaks): random loopback port, temporary directory, no persistence, started
and stopped by the test. RedisClient is an independent RESP client on a raw
socket (standard library only) for inspecting the server."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from edge_process import EXPECT_TIMEOUT_S, free_port, run_dir

REDIS_BINARY = "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, port=None):
        self.port = port
        self.process = None
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=run_dir())

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=EXPECT_TIMEOUT_S):
        """Starts on self.port (a free one when None); a taken random port
        is retried with another."""
        for _ in range(5):
            if self.port is None:
                self.port = free_port()
                fixed = False
            else:
                fixed = True
            if self._launch(timeout):
                return self
            if fixed:
                break
            self.port = None
        raise RuntimeError(f"redis-server did not start: {self.log_tail()}")

    def _launch(self, timeout):
        argv = [REDIS_BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log"), "--loglevel", "warning"]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with RedisClient(self.port) as c:
                    if c.command("PING") == "PONG":
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        return False

    def kill(self):
        """SIGKILL: everything in memory is lost (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def restart(self):
        self.kill()
        return self.start()

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


class RedisError(Exception):
    pass


class RedisClient:
    """Blocking RESP2 client: command(*args) -> str, int, None, list; error
    replies raise RedisError."""

    def __init__(self, port, timeout=EXPECT_TIMEOUT_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buffer) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buffer += data
        data, self.buffer = self.buffer[:n], self.buffer[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"bad reply line {line!r}")
