"""Certificates renewed on disk (certbot's way: new files behind the live/
symlinks, or a file renamed into place) are served by mf-ingress and mf-edge
without a signal and without dropping an open tunnel or session; a broken
renewal keeps the previous certificate and is counted; the ingress staples
the configured OCSP response, refreshes it when its file changes, refuses a
response that does not parse or does not match at start-up, and does not
staple a stale one (docs/security.md, "Certificate reload", "OCSP stapling").

Every wait is for the metric that proves the effect (the reload counters):
the file checks run every 50 ms here (tls.watch_interval_ms)."""

import json
import os
import signal
import socket
import ssl
import subprocess
import unittest

from edge_process import (EXPECT_TIMEOUT_S, AdminEdge, RawWebSocket, admin_get, free_port, parse_prometheus,
                          write_run_file)
from ingress_process import (BackendEdge, Ingress, class_fixture, ingress_binary, ingress_config_text, s_client,
                             wait_until)
from pki import CertificateAuthority, next_update, not_after, point_symlink, replace_by_rename

EDGE_ARGS = ["--messages-per-second", "1000", "--message-burst", "1000"]
WATCH_MS = 50


class LiveDirectory:
    """certbot's layout: archive/ holds every generation, live/ symlinks to
    the current one; the OCSP response is a plain file renamed into place."""

    def __init__(self, ca):
        self.ca = ca
        self.live = os.path.join(ca.directory, "live")
        os.mkdir(self.live)
        self.chain = os.path.join(self.live, "fullchain.pem")
        self.key = os.path.join(self.live, "privkey.pem")
        self.ocsp = os.path.join(self.live, "fullchain.pem.ocsp")
        self.current = None

    def install(self, issued, ocsp_response=None):
        point_symlink(self.chain, issued["chain"])
        point_symlink(self.key, issued["key"])
        if ocsp_response is not None:
            replace_by_rename(self.ocsp, ocsp_response)
        self.current = issued

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca.cert)


def served_serial(host, port, context):
    with socket.create_connection((host, port), timeout=EXPECT_TIMEOUT_S) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            return int(sock.getpeercert()["serialNumber"], 16)


def ping(ws, t):
    ws.send_text(json.dumps({"type": "ping", "t": t}))
    reply = json.loads(ws.recv_message(timeout=EXPECT_TIMEOUT_S))
    if reply != {"type": "pong", "t": t}:
        raise AssertionError(f"expected pong {t}, got {reply}")


class ServerUnderRenewal:
    """What both programs' tests ask of the server they renew: its reload
    counters, a wait for one to move, and the serial it serves now. A class
    sets `server` (the process), `files` (LiveDirectory) and `reloads_metric`."""

    def metrics(self):
        return parse_prometheus(admin_get(self.server.admin_port, "/metrics").body.decode())[0]

    def counts(self):
        samples = self.metrics()
        return {result: samples.get((self.reloads_metric, frozenset({"result": result}.items())), 0)
                for result in ("ok", "failed")}

    def wait_counts(self, before, result):
        return wait_until(lambda: (lambda now: now if now[result] > before[result] else None)(self.counts()),
                          EXPECT_TIMEOUT_S,
                          lambda: f"certificate reload {result} after {before}\n{self.server.stderr_tail()}")

    def serial(self):
        return served_serial(self.server.host, self.server.port, self.files.client_context())


class IngressCertificates(ServerUnderRenewal, unittest.TestCase):
    reloads_metric = "mf_ingress_tls_certificate_reloads_total"

    @classmethod
    def setUpClass(cls):
        cls.ca = CertificateAuthority()
        cls.files = LiveDirectory(cls.ca)
        first = cls.ca.issue()
        cls.files.install(first, cls.ca.ocsp_response(first))
        cls.edge = class_fixture(cls, BackendEdge("edge-certs", args=EDGE_ARGS))
        cls.ingress = class_fixture(cls, Ingress(
            backends=[cls.edge.address], certificates=[(cls.files.chain, cls.files.key, cls.files.ocsp)],
            settings={"tls": {"watch_interval_ms": WATCH_MS}}))
        cls.ingress.wait_backend_state(cls.edge.address, "up", timeout=30.0)
        cls.server = cls.ingress

    def open_session(self):
        ws = RawWebSocket(self.ingress.connect(ssl_context=self.files.client_context()))
        ws.upgrade()
        ping(ws, 1)
        return ws

    def stapled(self):
        code, out = s_client(self.ingress.port, "-servername", "localhost", "-status")
        self.assertEqual(code, 0, out)
        return out

    def test_renewal_serves_the_new_certificate_and_keeps_open_tunnels(self):
        ws = self.open_session()
        try:
            self.assertEqual(self.serial(), self.files.current["serial"])
            before = self.counts()
            renewed = self.ca.issue()
            self.assertNotEqual(renewed["serial"], self.files.current["serial"])
            self.files.install(renewed, self.ca.ocsp_response(renewed))
            self.wait_counts(before, "ok")
            self.assertEqual(self.serial(), renewed["serial"])
            # The tunnel opened before the renewal still relays both ways.
            for t in range(2, 6):
                ping(ws, t)
            out = self.stapled()
            self.assertIn("OCSP Response Status: successful", out)
            self.assertIn(f"Serial Number: {renewed['serial']:X}", out)
            samples = self.ingress.metrics()
            label = frozenset({"certificate": self.files.chain}.items())
            self.assertEqual(samples[("mf_ingress_tls_certificate_expiry_timestamp_seconds", label)],
                             not_after(renewed["leaf"]))
        finally:
            ws.close()

    def test_broken_replacement_keeps_the_certificate_and_counts_a_failure(self):
        ws = self.open_session()
        try:
            serving = self.files.current
            for what, replace in (
                    ("a key of another certificate", lambda: point_symlink(self.files.key, self.ca.issue()["key"])),
                    ("a certificate file that is not PEM",
                     lambda: point_symlink(self.files.chain, write_run_file("garbage.pem", "not a certificate\n")))):
                with self.subTest(what):
                    before = self.counts()
                    replace()
                    after = self.wait_counts(before, "failed")
                    self.assertEqual(after["failed"], before["failed"] + 1, "one failure per broken renewal")
                    self.assertEqual(self.serial(), serving["serial"])
                    ping(ws, 7)
                    self.assertIn("certificate reload refused, the previous certificates stay",
                                  self.ingress.stderr_text())
                    # Back to the files that serve: nothing to reload.
                    self.files.install(serving)
                    self.assertEqual(self.serial(), serving["serial"])
            self.assertEqual(self.counts()["failed"], after["failed"])
        finally:
            ws.close()

    def test_ocsp_staple_is_refreshed_when_its_file_changes(self):
        issued = self.files.current
        out = self.stapled()
        self.assertIn("OCSP Response Status: successful", out)
        self.assertIn(f"Serial Number: {issued['serial']:X}", out)
        before = self.counts()
        fresher = self.ca.ocsp_response(issued, days=2)
        replace_by_rename(self.files.ocsp, fresher)
        self.wait_counts(before, "ok")
        label = frozenset({"certificate": self.files.chain, "response": self.files.ocsp}.items())
        self.assertEqual(self.ingress.metric("mf_ingress_tls_ocsp_next_update_timestamp_seconds",
                                             **dict(label)), next_update(fresher))
        # The staple sent is the new file's (its nextUpdate is a day later).
        out = self.stapled()
        self.assertIn("OCSP Response Status: successful", out)
        stapled = next(line for line in out.splitlines() if "Next Update:" in line).split(":", 1)[1].strip()
        fresher_text = subprocess.run(["openssl", "ocsp", "-respin", fresher, "-resp_text", "-noverify"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10).stdout.decode()
        self.assertIn(f"Next Update: {stapled}", fresher_text)
        self.assertEqual(self.ingress.metric("mf_ingress_tls_ocsp_stale_total"), 0)

    def test_a_client_without_status_request_gets_no_staple(self):
        code, out = s_client(self.ingress.port, "-servername", "localhost")
        self.assertEqual(code, 0, out)
        self.assertNotIn("OCSP response", out)


class IngressOcspAtStart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ca = CertificateAuthority()
        cls.issued = cls.ca.issue()

    def check_config(self, ocsp_path):
        config = ingress_config_text(backends=["127.0.0.1:1"],
                                     certificates=[(self.issued["chain"], self.issued["key"], ocsp_path)])
        path = write_run_file("ingress-ocsp.toml", config)
        result = subprocess.run([ingress_binary(), "--config", path, "--check-config", "--listen",
                                 f"127.0.0.1:{free_port()}", "--admin", f"127.0.0.1:{free_port()}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return result.returncode, result.stderr.decode()

    def test_a_response_that_does_not_parse_or_match_is_refused(self):
        garbage = write_run_file("garbage.ocsp", "not DER at all")
        other = self.ca.ocsp_response(self.ca.issue())
        for path, reason in ((garbage, "is not a DER OCSPResponse"),
                             (other, f"does not answer for certificate {self.issued['chain']}")):
            with self.subTest(reason):
                code, err = self.check_config(path)
                self.assertNotEqual(code, 0, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(f"OCSP response {path} {reason}", err)
        code, err = self.check_config(self.ca.ocsp_response(self.issued))
        self.assertEqual(code, 0, err)

    def test_a_stale_response_is_not_stapled_and_is_counted(self):
        stale = self.ca.stale_ocsp_response(self.issued)
        with Ingress(backends=["127.0.0.1:1"], wait_for="tls",
                     certificates=[(self.issued["chain"], self.issued["key"], stale)]) as ingress:
            code, out = s_client(ingress.port, "-servername", "localhost", "-status")
            self.assertEqual(code, 0, out)
            self.assertIn("OCSP response: no response sent", out)
            self.assertEqual(ingress.wait_metric("mf_ingress_tls_ocsp_stale_total", lambda v: v >= 1), 1)
            label = {"certificate": self.issued["chain"], "response": stale}
            self.assertEqual(ingress.metric("mf_ingress_tls_ocsp_next_update_timestamp_seconds", **label),
                             next_update(stale))
            self.assertIn(f"OCSP response {stale} for {self.issued['chain']} is past its nextUpdate",
                          ingress.stderr_text())


class EdgeCertificates(ServerUnderRenewal, unittest.TestCase):
    reloads_metric = "mf_edge_tls_certificate_reloads_total"

    @classmethod
    def setUpClass(cls):
        cls.ca = CertificateAuthority()
        cls.files = LiveDirectory(cls.ca)
        cls.files.install(cls.ca.issue())
        cls.edge = class_fixture(cls, AdminEdge(
            edge_id="edge-certs", tls=(cls.files.chain, cls.files.key), trust=cls.ca.cert, shards=2,
            args=["--tls-watch-interval-ms", str(WATCH_MS)]))
        cls.server = cls.edge

    def test_renewal_and_broken_renewal_keep_open_sessions(self):
        sessions = [RawWebSocket.connect(self.edge) for _ in range(4)]  # spread over both shards
        try:
            for ws in sessions:
                ping(ws, 1)
            self.assertEqual(self.serial(), self.files.current["serial"])
            label = frozenset({"certificate": self.files.chain}.items())
            self.assertEqual(self.metrics()[("mf_edge_tls_certificate_expiry_timestamp_seconds", label)],
                             not_after(self.files.current["leaf"]))

            before = self.counts()
            renewed = self.ca.issue()
            self.files.install(renewed)
            self.wait_counts(before, "ok")
            for _ in range(4):  # new handshakes, whichever shard takes them
                self.assertEqual(self.serial(), renewed["serial"])
            for ws in sessions:
                ping(ws, 2)
            self.assertEqual(self.metrics()[("mf_edge_tls_certificate_expiry_timestamp_seconds", label)],
                             not_after(renewed["leaf"]))

            before = self.counts()
            point_symlink(self.files.key, self.ca.issue()["key"])
            after = self.wait_counts(before, "failed")
            self.assertEqual(after, {"ok": before["ok"], "failed": before["failed"] + 1})
            self.assertEqual(self.serial(), renewed["serial"])
            self.assertIn("certificate reload refused, the previous certificate stays", self.edge.stderr_text())
            for ws in sessions:
                ping(ws, 3)
            self.files.install(renewed)
        finally:
            for ws in sessions:
                ws.close()

    def test_sighup_reloads_the_certificate_too(self):
        before = self.counts()
        self.edge.send_signal(signal.SIGHUP)
        after = self.wait_counts(before, "ok")
        self.assertEqual(after["failed"], before["failed"])
        self.assertEqual(self.serial(), self.files.current["serial"])


if __name__ == "__main__":
    unittest.main()
