"""The Debian package (packaging/build-deb.sh): its contents, lintian, and a
real install on this machine with apt-get, the installed programs checking
the installed example configurations, then a purge that leaves nothing.

It installs a package system-wide, so it runs alone (tests/meson.build lists
it as exclusive) and refuses to start if a meshedflow package is already
installed (it would replace and then purge it)."""

import os
import gzip
import re
import subprocess
import tempfile
import unittest

import json

from edge_process import build_dir, run_dir, tls_material

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DEB = os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh")
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
# Another apt-get on the machine holds the dpkg lock for a while: wait for it.
APT_LOCK = ["-o", "DPkg::Lock::Timeout=600"]


def run(argv, timeout, env=None):
    """(exit code, stdout + stderr)."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env)
    return result.returncode, result.stdout.decode(errors="replace")


def package_status():
    code, out = run(["dpkg-query", "-W", "-f=${Status}", "meshedflow"], timeout=60)
    return out.strip() if code == 0 else "not known to dpkg"


def source_units():
    """The unit file names the source tree installs (systemd/)."""
    names = []
    for name in sorted(os.listdir(os.path.join(SOURCE_ROOT, "systemd"))):
        if name.endswith(".service.in"):
            names.append(name[:-len(".in")])
        elif name.endswith((".service", ".socket")):
            names.append(name)
    return names


def packaging_source():
    """build-deb.sh's arguments that choose what it packages: the build under
    test when it is configured for the installed paths (the test command's
    build-tests/ is), so the programs this run tested are the ones installed
    and nothing is compiled twice; else the script's own release build in
    build-deb/, whose first compilation takes minutes on two cores."""
    result = subprocess.run(["meson", "introspect", build_dir(), "--buildoptions"], capture_output=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"meson introspect {build_dir()} failed:\n{result.stderr.decode(errors='replace')}")
    options = {o["name"]: o["value"] for o in json.loads(result.stdout)}
    if (options["prefix"], options["sysconfdir"]) == ("/usr", "/etc"):
        return ["--from-build", build_dir()]
    return []


class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        status = package_status()
        if "installed" in status and "not-installed" not in status:
            raise AssertionError(f"a meshedflow package is already installed ({status}): this test would replace "
                                 "and purge it; remove it first (apt-get purge meshedflow)")
        # The package creates a system group and, as Debian packages do,
        # keeps it on purge; a group this test made is removed at the end.
        if run(["getent", "group", "meshedflow-hls"], timeout=60)[0] != 0:
            cls.addClassCleanup(lambda: run(["groupdel", "meshedflow-hls"], timeout=60))
        cls.out_dir = tempfile.mkdtemp(prefix="deb-", dir=run_dir())
        code, out = run([BUILD_DEB, *packaging_source(), cls.out_dir], timeout=1500)
        if code != 0:
            raise AssertionError(f"packaging/build-deb.sh failed ({code}):\n{out}")
        cls.deb = out.strip().splitlines()[-1]
        code, listing = run(["dpkg-deb", "--contents", cls.deb], timeout=60)
        if code != 0:
            raise AssertionError(listing)
        cls.entries = {}
        for line in listing.splitlines():
            fields = line.split(None, 5)
            path = fields[5].split(" -> ")[0]
            cls.entries[path[1:].rstrip("/") or "/"] = fields[0]
        cls.files = sorted(p for p, mode in cls.entries.items() if not mode.startswith("d"))
        cls.addClassCleanup(cls.purge_if_installed)

    @classmethod
    def purge_if_installed(cls):
        if package_status() != "not known to dpkg":
            run(["apt-get", *APT_LOCK, "purge", "-y", "meshedflow"], timeout=900, env=APT_ENV)

    def field(self, name):
        code, out = run(["dpkg-deb", "--field", self.deb, name], timeout=60)
        self.assertEqual(code, 0, out)
        return out.strip()

    def test_1_name_and_contents(self):
        version = self.field("Version")
        self.assertEqual(os.path.basename(self.deb), f"meshedflow_{version}_amd64.deb")
        with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
            self.assertIn(f"version: '{version}'", f.read())
        expected = ["/usr/bin/mf-edge", "/usr/bin/mf-ingress",
                    "/usr/lib/sysctl.d/60-meshedflow.conf",
                    "/etc/meshedflow/mf-edge.example.toml", "/etc/meshedflow/mf-ingress.example.toml",
                    "/usr/share/man/man1/mf-edge.1.gz", "/usr/share/man/man1/mf-ingress.1.gz",
                    "/usr/share/doc/meshedflow/copyright", "/usr/share/doc/meshedflow/changelog.gz",
                    "/usr/share/meshedflow/prometheus/meshedflow-alerts.yml",
                    "/usr/share/meshedflow/grafana/meshedflow.json"]
        expected += [f"/usr/lib/systemd/system/{unit}" for unit in source_units()]
        if os.path.exists(os.path.join(SOURCE_ROOT, "origin", "meson.build")):
            expected += ["/usr/bin/mf-sign", "/usr/share/man/man1/mf-sign.1.gz",
                         "/etc/meshedflow/mf-sign.example.toml", "/usr/lib/sysusers.d/meshedflow.conf"]
        for path in expected:
            self.assertIn(path, self.files)
        for path in ("/usr/bin/mf-load", "/usr/bin/mf-echo"):
            self.assertNotIn(path, self.files, "the perf tools stay with the source tree")
        self.assertTrue(any(p.startswith("/usr/share/doc/meshedflow/deploy.md") for p in self.files))
        self.assertIn("ssl-cert", self.field("Depends"), "mf-ingress.service uses SupplementaryGroups=ssl-cert")
        self.assertRegex(self.field("Depends"), r"liburing2")

    def test_2_conffiles_and_static_users(self):
        with tempfile.TemporaryDirectory(dir=run_dir()) as control:
            code, out = run(["dpkg-deb", "--control", self.deb, control], timeout=60)
            self.assertEqual(code, 0, out)
            with open(os.path.join(control, "conffiles")) as f:
                conffiles = sorted(f.read().split())
        self.assertEqual(conffiles, [p for p in self.files if p.startswith("/etc/")])
        self.assertGreaterEqual(len(conffiles), 2)
        # Every group or user a unit names must exist once the package is
        # installed: a static User=/Group= (without DynamicUser=yes) or a
        # SupplementaryGroups= group comes from the package's sysusers.d
        # entry, or from a package it depends on.
        from_dependencies = {"ssl-cert": "ssl-cert"}  # group: the package that creates it
        depends = self.field("Depends")
        with tempfile.TemporaryDirectory(dir=run_dir()) as tree:
            code, out = run(["dpkg-deb", "--extract", self.deb, tree], timeout=120)
            self.assertEqual(code, 0, out)
            sysusers = "".join(open(tree + p).read() for p in self.files if p.startswith("/usr/lib/sysusers.d/"))
            units = [p for p in self.files if p.startswith("/usr/lib/systemd/system/") and p.endswith(".service")]
            self.assertGreaterEqual(len(units), 2)
            for unit in units:
                with open(tree + unit) as f:
                    text = f.read()
                users = re.findall(r"(?m)^User=(\S+)", text)
                groups = re.findall(r"(?m)^Group=(\S+)", text)
                if re.search(r"(?m)^DynamicUser=yes", text):
                    users, groups = [], []
                for line in re.findall(r"(?m)^SupplementaryGroups=(.*)$", text):
                    groups += line.split()
                for kind, name in [("u", n) for n in users] + [("g", n) for n in groups]:
                    with self.subTest(unit=unit, name=name):
                        if name in from_dependencies:
                            self.assertIn(from_dependencies[name], depends)
                        else:
                            self.assertRegex(sysusers, rf"(?m)^{'[ug]' if kind == 'g' else 'u'}\s+{re.escape(name)}\s",
                                             f"{unit} needs {name}: no sysusers.d entry in the package")

    def test_3_lintian_clean(self):
        code, out = run(["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", self.deb],
                        timeout=900)
        self.assertEqual(code, 0, f"lintian:\n{out}")
        self.assertNotRegex(out, r"(?m)^[EW]: ", out)

    def test_4_install_check_configs_purge(self):
        code, out = run(["apt-get", *APT_LOCK, "install", "-y", "--no-install-recommends", self.deb],
                        timeout=900, env=APT_ENV)
        self.assertEqual(code, 0, f"apt-get install:\n{out}")
        self.assertEqual(package_status(), "install ok installed")
        if "/usr/lib/sysusers.d/meshedflow.conf" in self.files:
            self.assertEqual(run(["getent", "group", "meshedflow-hls"], timeout=60)[0], 0,
                             "postinst did not create the sysusers.d group")
        for path in self.files:
            self.assertTrue(os.path.lexists(path), f"{path} of the package is not on the disk")

        # The installed programs check the installed examples.
        code, out = run(["/usr/bin/mf-edge", "--config", "/etc/meshedflow/mf-edge.example.toml", "--check-config"],
                        timeout=60)
        self.assertEqual(code, 0, out)
        self.assertIn("# mf-edge effective configuration", out)
        # The ingress example names certificate files the operator provides
        # (docs/deploy.md): without them it fails with one line naming the
        # file; with the flags replacing them it passes.
        code, out = run(["/usr/bin/mf-ingress", "--config", "/etc/meshedflow/mf-ingress.example.toml",
                         "--check-config"], timeout=60)
        self.assertNotEqual(code, 0, out)
        self.assertIn("/etc/meshedflow/ingress/certificate.pem", out)
        cert, key = tls_material()
        code, out = run(["/usr/bin/mf-ingress", "--config", "/etc/meshedflow/mf-ingress.example.toml",
                         "--tls-cert", cert, "--tls-key", key, "--check-config"], timeout=60)
        self.assertEqual(code, 0, out)
        self.assertIn("# mf-ingress effective configuration", out)
        with gzip.open("/usr/share/man/man1/mf-edge.1.gz", "rt") as f:
            self.assertIn("\\-\\-check\\-config", f.read(), "the man page holds the --help text")

        code, out = run(["apt-get", *APT_LOCK, "purge", "-y", "meshedflow"], timeout=900, env=APT_ENV)
        self.assertEqual(code, 0, f"apt-get purge:\n{out}")
        self.assertEqual(package_status(), "not known to dpkg")
        left = [p for p in self.files if os.path.lexists(p)]
        self.assertEqual(left, [], "files of the package left after the purge")
        for directory in ("/etc/meshedflow", "/usr/share/doc/meshedflow", "/usr/share/meshedflow"):
            self.assertFalse(os.path.lexists(directory), f"{directory} left after the purge")


if __name__ == "__main__":
    unittest.main()
