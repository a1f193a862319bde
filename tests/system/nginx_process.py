"""Debian's nginx as an HTTP origin for the SDK's browser tests: serves one
directory on a free loopback port (its own temporary prefix and config, no
system service), logs every request to an access log the test reads
(nginx's combined format, then the request's Range header and the time in
ms: docs/pilot.md, "The origin's access log"), and answers byte ranges (206)
as a CDN does."""

import os
import re
import socket
import tempfile
import time

from edge_process import EXPECT_TIMEOUT_S, ManagedProcess, free_port, run_dir

NGINX_BINARY = "/usr/sbin/nginx"

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
  types {{
    text/html html; text/javascript js mjs; application/json json;
    application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; text/plain mfsig;
  }}
  default_type application/octet-stream;
  log_format mf '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                '"$http_referer" "$http_user_agent" "$http_range" $msec';
  access_log {prefix}/access.log mf;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  sendfile on;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    etag off;
    add_header Cache-Control no-store;
  }}
}}
"""


# One line of CONFIG's log format (nginx escapes '"' inside a field as \x22).
LOG_LINE = re.compile(r'^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) "([^"]*)" "([^"]*)" "([^"]*)" ([\d.]+)$')


class OriginServer(ManagedProcess):
    """nginx serving `root` for a `with` block: .url is http://127.0.0.1:PORT,
    .requests() the access log parsed."""

    name = "nginx"

    def __init__(self, root):
        super().__init__(expect_clean_exit=False)
        self.root = root
        self.prefix = tempfile.mkdtemp(prefix="nginx-", dir=run_dir())
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=EXPECT_TIMEOUT_S):
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(CONFIG.format(prefix=self.prefix, port=self.port, root=self.root))
            self._spawn([NGINX_BINARY, "-p", self.prefix, "-c", conf], "nginx-")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.alive():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            self._reap()
        raise RuntimeError(f"nginx did not start: {self.error_log()}")

    def error_log(self):
        try:
            with open(os.path.join(self.prefix, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    @property
    def access_log_path(self):
        return os.path.join(self.prefix, "access.log")

    def entries(self):
        """[(method, path, status, range or None, bytes sent, unix time in s, user agent)] in order."""
        out = []
        try:
            with open(self.access_log_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return out
        for line in lines:
            m = LOG_LINE.match(line)
            if not m:
                raise ValueError(f"unexpected access log line: {line!r}")
            method, target = (m.group(4).split(" ") + [""])[:2]
            value = m.group(9)
            out.append((method, target.split("?")[0], int(m.group(5)), None if value in ("", "-") else value,
                        int(m.group(6)), float(m.group(10)), m.group(8)))
        return out

    def requests(self):
        """[(method, path, status, range or None, bytes)] in order."""
        return [e[:5] for e in self.entries()]
