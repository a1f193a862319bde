"""The user-space TLS 1.3 record layer of mf-edge and mf-ingress, attacked
from outside (docs/security.md, "The TLS 1.3 record layer"):

- a tampered record gets the bad_record_mac alert before the FIN (edge and
  ingress);
- thousands of KeyUpdates in one record, or one per record in a loop, get
  unexpected_message after at most one record or 32 updates, and a
  bystander on the same shard keeps being answered;
- a client that negotiated max_fragment_length 512 (openssl s_client
  -maxfraglen 512) receives a 10 KiB signal intact.

The hostile records are sealed here with the client's own traffic secret
(from the ssl module's key log) by a minimal RFC 8446 record sealer, since
no TLS library sends them."""

import hashlib
import hmac
import json
import os
import random
import select
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from build_options import needs_test_hooks
from edge_process import (OP_TEXT, Edge, SdkClient, client_ssl_context, encode_frame, upgrade_request, accept_for,
                          edge_config_file, UNLIMITED_SOURCE)
from ingress_process import BackendEdge, Ingress, TlsPipe, class_fixture, trust_context

HANDSHAKE, APPLICATION_DATA = 22, 23
KEY_UPDATE_NOT_REQUESTED = bytes([24, 0, 0, 1, 0])


def expand_label(hash_name, secret, label, length):
    """HKDF-Expand-Label(secret, label, "", length), length <= hash length (RFC 8446 section 7.1)."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00" + b"\x01"
    return hmac.new(secret, info, hash_name).digest()[:length]


SUITES = {
    "TLS_AES_128_GCM_SHA256": ("sha256", 16, AESGCM),
    "TLS_AES_256_GCM_SHA384": ("sha384", 32, AESGCM),
    "TLS_CHACHA20_POLY1305_SHA256": ("sha256", 32, ChaCha20Poly1305),
}


class RecordSealer:
    """Seals TLS 1.3 records of any inner type under a client's
    application traffic secret, from sequence number 0."""

    def __init__(self, suite, secret):
        self.hash_name, self.key_bytes, self.aead = SUITES[suite]
        self.secret = secret
        self._derive()

    def _derive(self):
        self.cipher = self.aead(expand_label(self.hash_name, self.secret, b"key", self.key_bytes))
        self.iv = expand_label(self.hash_name, self.secret, b"iv", 12)
        self.sequence = 0

    def seal(self, inner_type, content):
        inner = content + bytes([inner_type])
        header = bytes([APPLICATION_DATA, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.sequence.to_bytes(12, "big")))
        self.sequence += 1
        return header + self.cipher.encrypt(nonce, inner, header)

    def key_update(self):
        """A KeyUpdate record, after which the sealer uses the next secret."""
        record = self.seal(HANDSHAKE, KEY_UPDATE_NOT_REQUESTED)
        hash_bytes = hashlib.new(self.hash_name).digest_size
        self.secret = expand_label(self.hash_name, self.secret, b"traffic upd", hash_bytes)
        self._derive()
        return record


class HostileClient(TlsPipe):
    """A TlsPipe that also holds its client traffic secret, to send records
    no TLS library sends."""

    def __init__(self, server, trust):
        with tempfile.TemporaryDirectory() as directory:
            context = trust()
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            context.keylog_filename = os.path.join(directory, "keys")
            super().__init__(server, ssl_context=context)
            with open(context.keylog_filename) as log:
                secrets = dict(line.split()[0::2] for line in log if line.strip() and not line.startswith("#"))
        self.sealer = RecordSealer(self.obj.cipher()[0], bytes.fromhex(secrets["CLIENT_TRAFFIC_SECRET_0"]))

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_alert(self, timeout=5.0):
        """The TLS error the server's answer raises (its fatal alert), or
        None if the stream ended without one."""
        try:
            while self.read(timeout):
                pass
        except ConnectionError as error:
            return str(error).lower()
        return None


def ping_rtt(client, t):
    started = time.monotonic()
    reply = client.request({"type": "ping", "t": t}, timeout=10.0)
    assert reply == {"type": "pong", "t": t}, reply
    return time.monotonic() - started


class RecordLayerAttackCases:
    """Shared by the edge and the ingress (self.server, self.trust, self.bystander)."""

    def check_alert(self, records, expected):
        client = HostileClient(self.server, self.trust)
        try:
            client.send_raw(records(client.sealer))
            alert = client.read_alert()
        finally:
            client.close()
        self.assertIsNotNone(alert, "the connection ended without an alert")
        self.assertIn(expected, alert)

    def test_tampered_record_gets_bad_record_mac(self):
        def tampered(sealer):
            record = bytearray(sealer.seal(APPLICATION_DATA, b"GET / HTTP/1.1\r\n\r\n"))
            record[8] ^= 1
            return bytes(record)
        self.check_alert(tampered, "bad record mac")

    def test_key_update_flood_in_one_record(self):
        rtts = []
        for round_ in range(20):
            self.check_alert(lambda sealer: sealer.seal(HANDSHAKE, KEY_UPDATE_NOT_REQUESTED * 3000),
                             "unexpected message")
            rtts.append(ping_rtt(self.bystander, round_))
        print(f"tls record layer: 20 records of 3000 KeyUpdates refused; bystander ping max "
              f"{max(rtts) * 1000:.1f} ms")

    def test_key_update_one_per_record(self):
        # 32 in a row pass (then one byte of data resets the count); the 33rd fails.
        def records(sealer):
            allowed = b"".join(sealer.key_update() for _ in range(32)) + sealer.seal(APPLICATION_DATA, b"G")
            return allowed + b"".join(sealer.key_update() for _ in range(1000))
        self.check_alert(records, "unexpected message")
        ping_rtt(self.bystander, "after")

    def test_empty_records_are_bounded(self):
        self.check_alert(lambda sealer: b"".join(sealer.seal(APPLICATION_DATA, b"") for _ in range(5000)),
                         "unexpected message")

    def test_new_session_ticket_from_the_client(self):
        self.check_alert(lambda sealer: sealer.seal(HANDSHAKE, bytes([4, 0, 0, 4, 0, 0, 0, 0])),
                         "unexpected message")


class EdgeRecordLayerTest(RecordLayerAttackCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One shard: the bystander shares the attacker's shard.
        cls.edge = class_fixture(cls, Edge(args=["--config", edge_config_file(UNLIMITED_SOURCE)], tls=True,
                                           shards=1))
        cls.server = cls.edge
        cls.trust = staticmethod(client_ssl_context)
        cls.bystander = SdkClient(cls.edge)
        cls.addClassCleanup(cls.bystander.close)

    def test_max_fragment_length_client_receives_a_large_signal(self):
        stream = f"mfl-{random.randrange(1 << 30)}"
        receiver = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{self.edge.port}", "-servername", "localhost",
             "-maxfraglen", "512", "-quiet", "-nocommands", "-no_ign_eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            request, key = upgrade_request()
            join = json.dumps({"type": "join", "streamId": stream, "rendition": "r", "peerId": "small-records"})
            receiver.stdin.write(request + encode_frame(OP_TEXT, join))
            receiver.stdin.flush()
            received = Reader(receiver.stdout)
            head = received.until(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
            self.assertIn(accept_for(key).encode(), head)
            self.assertEqual(json.loads(received.frame())["type"], "joined")
            sender = SdkClient(self.edge)
            self.addCleanup(sender.close)
            sender.join(stream, "r", "sender")
            data = json.dumps("x" * (10 * 1024))
            sender.send('{"type":"signal","to":"small-records","kind":"offer","data":' + data + "}")
            while True:
                message = json.loads(received.frame())
                if message["type"] == "signal":
                    break
            self.assertEqual((message["from"], message["data"]), ("sender", "x" * (10 * 1024)))
        finally:
            receiver.kill()
            receiver.wait(timeout=10)


class Reader:
    """Bytes from a pipe with a deadline; WebSocket frames from the server (unmasked)."""

    def __init__(self, pipe, timeout=10.0):
        self.pipe, self.buffer, self.deadline = pipe, b"", time.monotonic() + timeout

    def _fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0 or not select.select([self.pipe], [], [], left)[0]:
            raise TimeoutError(f"nothing more from s_client; have {self.buffer[:200]!r}")
        chunk = os.read(self.pipe.fileno(), 65536)
        if not chunk:
            raise ConnectionError(f"s_client ended; have {self.buffer[:200]!r}")
        self.buffer += chunk

    def take(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def until(self, marker):
        while marker not in self.buffer:
            self._fill()
        end = self.buffer.index(marker) + len(marker)
        return self.take(end)

    def frame(self):
        head = self.take(2)
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(self.take(2), "big")
        elif n == 127:
            n = int.from_bytes(self.take(8), "big")
        return self.take(n).decode()


class IngressRecordLayerTest(RecordLayerAttackCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.edge = class_fixture(cls, BackendEdge("edge-record-layer", args=["--config",
                                                                              edge_config_file(UNLIMITED_SOURCE)]))
        cls.server = class_fixture(cls, Ingress(backends=[cls.edge.address], shards=1))
        cls.trust = staticmethod(trust_context)
        cls.bystander = SdkClient(cls.server)
        cls.addClassCleanup(cls.bystander.close)


@needs_test_hooks
class SelfTestAtStartUp(unittest.TestCase):
    """Both binaries prove the hand-over at start-up; a miscounted sequence
    number (test hook MF_TEST_TLS_SEQUENCE_SKEW, -Dtest_hooks=true) fails
    the proof, and OpenSSL keeps the records: clients are still served."""

    def start(self, process, skew=None):
        if skew is not None:
            os.environ["MF_TEST_TLS_SEQUENCE_SKEW"] = str(skew)
        try:
            return self.enterContext(process)
        finally:
            os.environ.pop("MF_TEST_TLS_SEQUENCE_SKEW", None)

    def served(self, server, trust):
        client = SdkClient(server)
        try:
            self.assertEqual(client.request({"type": "ping", "t": 1}), {"type": "pong", "t": 1})
        finally:
            client.close()
        # Whoever holds the records, a tampered one gets bad_record_mac.
        attacker = HostileClient(server, trust)
        try:
            record = bytearray(attacker.sealer.seal(APPLICATION_DATA, b"x"))
            record[-1] ^= 1
            attacker.send_raw(bytes(record))
            self.assertIn("bad record mac", attacker.read_alert() or "")
        finally:
            attacker.close()

    # Which AES-GCM a passed self-test names: the CPU's (docs/security.md, "AES-GCM
    # on the CPU's instructions") wherever it has AES-NI and PCLMULQDQ.
    @staticmethod
    def expected_aes_gcm():
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        if "aes" in flags and "pclmulqdq" in flags and "sse4_1" in flags:
            return "AES-GCM records up to 2 KiB on AES-NI and PCLMULQDQ"
        return "AES-GCM through EVP"

    def test_edge(self):
        for skew, verdict in ((None, "record layer self-test passed with OpenSSL 3."),
                              (1, "record layer self-test failed with OpenSSL 3.")):
            with self.subTest(skew=skew):
                edge = self.start(Edge(tls=True, shards=1), skew)
                self.assertIn(verdict, edge.stderr_text())
                if skew is None:
                    self.assertIn(self.expected_aes_gcm(), edge.stderr_text())
                self.served(edge, client_ssl_context)
                edge.__exit__(None, None, None)

    def test_ingress(self):
        backend = self.enterContext(BackendEdge("edge-self-test"))
        for skew, verdict in ((None, "record layer self-test passed with OpenSSL 3."),
                              (1, "record layer self-test failed with OpenSSL 3.")):
            with self.subTest(skew=skew):
                ingress = self.start(Ingress(backends=[backend.address], shards=1), skew)
                self.assertIn(verdict, ingress.stderr_text())
                if skew is None:
                    self.assertIn(self.expected_aes_gcm(), ingress.stderr_text())
                self.served(ingress, trust_context)
                ingress.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
