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
    def __init__(self, port=None, cluster=False):
        self.port = port
        self.cluster = cluster
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
                # A cluster node's bus listens on port + 10000.
                while self.cluster and self.port > 55535:
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
        if self.cluster:
            # A short node timeout: a killed primary's replica is promoted
            # within a few seconds.
            argv += ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
                     "--cluster-config-file", os.path.join(self.dir, "nodes.conf")]
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


class RedisCluster:
    """A real Redis 7 cluster: `primaries` primaries with one replica each
    (cluster-enabled redis-server processes on random loopback ports, made
    one cluster by `redis-cli --cluster create --cluster-replicas 1`),
    stopped by close(). start() returns once every node reports
    cluster_state:ok and every replica's link to its primary is up."""

    def __init__(self, primaries=3):
        self.nodes = [RedisServer(cluster=True) for _ in range(2 * primaries)]

    @property
    def seeds(self):
        return [n.address for n in self.nodes]

    @property
    def port(self):
        """A live node's port: RedisClient(cluster.port) reads any key (MOVED followed)."""
        return self.alive()[0].port

    def start(self, timeout=30.0):
        try:
            for n in self.nodes:
                n.start()
            create = subprocess.run(["/usr/bin/redis-cli", "--cluster", "create", *self.seeds,
                                     "--cluster-replicas", "1", "--cluster-yes"],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create: {create.stdout[-2000:]!r} {create.stderr[-2000:]!r}")
            self.wait_healthy(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def alive(self):
        return [n for n in self.nodes if n.process is not None]

    def info(self, node, section):
        with RedisClient(node.port) as c:
            text = c.command("INFO", section) if section != "cluster" else c.command("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def healthy(self):
        try:
            for n in self.alive():
                if self.info(n, "cluster").get("cluster_state") != "ok":
                    return False
                replication = self.info(n, "replication")
                if replication.get("role") == "slave" and (replication.get("master_link_status") != "up"
                                                           or replication.get("master_sync_in_progress") != "0"):
                    return False
                if self.info(n, "persistence").get("loading") != "0":
                    return False
            return True
        except (OSError, RedisError):
            return False

    def wait_healthy(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster is not healthy: " + " | ".join(
                    n.log_tail()[-300:] for n in self.alive()))
            time.sleep(0.05)

    def node_by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def shards(self):
        """[(first slot, last slot, primary port, primary id)] as a live node
        sees them (CLUSTER SLOTS)."""
        with RedisClient(self.alive()[0].port) as c:
            slots = c.command("CLUSTER", "SLOTS")
        return [(s[0], s[1], s[2][1], s[2][2]) for s in slots]

    def primary_of(self, slot):
        for first, last, port, node_id in self.shards():
            if first <= slot <= last:
                return self.node_by_port(port), node_id
        raise LookupError(f"slot {slot} has no primary")

    def node_id(self, node):
        with RedisClient(node.port) as c:
            return c.command("CLUSTER", "MYID")

    def move_slot(self, slot, target):
        """Moves one slot to `target` (a primary) as `redis-cli --cluster
        reshard` does: IMPORTING, MIGRATING, MIGRATE of its keys, then
        SETSLOT NODE on every primary."""
        source, source_id = self.primary_of(slot)
        target_id = self.node_id(target)
        with RedisClient(target.port) as t, RedisClient(source.port) as s:
            t.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            s.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = s.command("CLUSTER", "GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                s.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for n in self.alive():
            with RedisClient(n.port) as c:
                if c.command("ROLE")[0] == "master":
                    c.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def close(self):
        for n in self.nodes:
            n.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


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
        """One command; a cluster node's MOVED is followed (once), so a test
        reads a cluster's keys as it reads one server's."""
        try:
            return self._command(*args)
        except RedisError as e:
            if not str(e).startswith("MOVED "):
                raise
            with RedisClient(int(str(e).rsplit(":", 1)[1])) as owner:
                return owner._command(*args)

    def _command(self, *args):
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
