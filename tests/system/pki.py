"""A throw-away certificate authority for the certificate tests: leaf
certificates it signs (chain file = leaf + CA, as certbot's fullchain.pem),
and OCSP responses for them made by Debian's `openssl ocsp` with the CA as
its own responder. A response already past its nextUpdate cannot be made by
`openssl ocsp` (it refuses a negative validity): python3-cryptography's
builder makes that one."""

import datetime
import itertools
import os
import subprocess
import tempfile

from edge_process import run_dir

_serials = itertools.count(0x10000000 + os.getpid() % 0x10000 * 0x100)  # 8 hex digits, as openssl prints them


def openssl(*args, cwd=None):
    result = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: " + result.stdout.decode(errors="replace"))
    return result.stdout.decode(errors="replace")


class CertificateAuthority:
    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="pki-", dir=run_dir())
        self.key = os.path.join(self.directory, "ca.key")
        self.cert = os.path.join(self.directory, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "3", "-subj", "/CN=MeshedFlow test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.index = os.path.join(self.directory, "index.txt")
        open(self.index, "w").close()
        with open(self.index + ".attr", "w") as f:
            f.write("unique_subject = no\n")  # every renewal names the same host

    def issue(self, name="localhost", days=2):
        """A fresh key and certificate: {"chain", "key", "leaf", "serial"} (paths; serial as an int)."""
        serial = next(_serials)
        stem = os.path.join(self.directory, f"{name}-{serial:x}")
        key, csr, leaf, chain = stem + ".key", stem + ".csr", stem + ".pem", stem + "-fullchain.pem"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", csr, "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1")
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-set_serial", str(serial),
                "-days", str(days), "-copy_extensions", "copy", "-out", leaf)
        with open(chain, "w") as out:
            for part in (leaf, self.cert):
                with open(part) as f:
                    out.write(f.read())
        expiry = (datetime.datetime.utcnow() + datetime.timedelta(days=days + 1)).strftime("%y%m%d%H%M%SZ")
        with open(self.index, "a") as f:
            f.write(f"V\t{expiry}\t\t{serial:X}\tunknown\t/CN={name}\n")
        return {"chain": chain, "key": key, "leaf": leaf, "serial": serial}

    def ocsp_response(self, issued, days=1):
        """A DER OCSP response saying `good` for the certificate, valid `days`; its path."""
        out = os.path.join(self.directory, f"ocsp-{issued['serial']:x}-{next(_serials):x}.der")
        openssl("ocsp", "-index", self.index, "-rsigner", self.cert, "-rkey", self.key, "-CA", self.cert,
                "-issuer", self.cert, "-cert", issued["leaf"], "-respout", out, "-ndays", str(days))
        return out

    def stale_ocsp_response(self, issued):
        """A DER OCSP response whose nextUpdate passed an hour ago; its path."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp
        with open(issued["leaf"], "rb") as f:
            leaf = x509.load_pem_x509_certificate(f.read())
        with open(self.cert, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(self.key, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), password=None)
        now = datetime.datetime.utcnow()
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=leaf, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - datetime.timedelta(days=2), next_update=now - datetime.timedelta(hours=1),
            revocation_time=None, revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
        response = builder.sign(ca_key, hashes.SHA256())
        out = os.path.join(self.directory, f"ocsp-stale-{issued['serial']:x}.der")
        with open(out, "wb") as f:
            f.write(response.public_bytes(serialization.Encoding.DER))
        return out


def next_update(response_path):
    """nextUpdate of a DER OCSP response, Unix seconds (openssl's reading)."""
    text = openssl("ocsp", "-respin", response_path, "-resp_text", "-noverify")
    for line in text.splitlines():
        if "Next Update:" in line:
            stamp = line.split("Next Update:", 1)[1].strip()
            return int(datetime.datetime.strptime(stamp, "%b %d %H:%M:%S %Y GMT")
                       .replace(tzinfo=datetime.timezone.utc).timestamp())
    raise AssertionError("no Next Update in\n" + text)


def not_after(certificate_path):
    """notAfter of a PEM certificate, Unix seconds."""
    stamp = openssl("x509", "-in", certificate_path, "-noout", "-enddate").strip().split("=", 1)[1]
    return int(datetime.datetime.strptime(stamp, "%b %d %H:%M:%S %Y GMT")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def replace_by_rename(path, source):
    """Puts a copy of `source` at `path` the way certbot and most tools do:
    written beside it, then renamed over it (readers never see half a file)."""
    with open(source, "rb") as f:
        data = f.read()
    temporary = path + ".new"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def point_symlink(link, target):
    """Points `link` at `target` atomically (certbot's live/ symlinks)."""
    temporary = link + ".new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)
