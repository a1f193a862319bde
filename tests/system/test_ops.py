"""The operator's files in ops/: the Prometheus rules pass `promtool check
rules` and their unit tests (ops/prometheus/meshedflow-alerts.test.yml), the
real /metrics of a running mf-edge and mf-ingress pass `promtool check
metrics`, and every metric the rules and the Grafana dashboard
(ops/grafana/meshedflow.json) use exists in that real output.

promtool comes from Debian's `prometheus` package (install-deps.sh)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from edge_process import SdkClient, admin_get, edge_config_file, parse_prometheus, run_dir, UNLIMITED_SOURCE
from ingress_process import BackendEdge, Ingress, class_fixture
from pki import CertificateAuthority
from redis_process import RedisServer

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(SOURCE_ROOT, "ops", "prometheus", "meshedflow-alerts.yml")
RULE_TESTS = os.path.join(SOURCE_ROOT, "ops", "prometheus", "meshedflow-alerts.test.yml")
DASHBOARD = os.path.join(SOURCE_ROOT, "ops", "grafana", "meshedflow.json")
PROMTOOL = "/usr/bin/promtool"

# Series Prometheus records itself for every target it scrapes
# (https://prometheus.io/docs/concepts/jobs_instances/): not in /metrics.
SCRAPE_SERIES = {"up", "scrape_duration_seconds"}

# The dashboard's variables, as Grafana substitutes them, for checking its
# queries with promtool.
DASHBOARD_VARIABLES = {
    "$__rate_interval": "1m",
    "$edge_job": "meshedflow-edge",
    "$ingress_job": "meshedflow-ingress",
    "$edge_instance": ".*",
    "$ingress_instance": ".*",
}

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "inf", "nan", "atan2"}


def promtool(*args, stdin=None):
    """(exit code, stdout + stderr) of promtool."""
    result = subprocess.run([PROMTOOL, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=120)
    return result.returncode, result.stdout.decode(errors="replace")


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not
    functions, keywords, label names (in {...}, by/on/... lists) or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"`[^`]*`", "``", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])[A-Za-z_:][\w:]*", text):
        if text[match.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0) in PROMQL_KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def load_rules():
    import yaml  # python3-yaml (install-deps.sh)
    with open(RULES) as f:
        return yaml.safe_load(f)


def rule_expressions():
    """[(rule name, expr)] of every recording and alerting rule."""
    out = []
    for group in load_rules()["groups"]:
        for rule in group["rules"]:
            out.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return out


def recorded_names():
    return {rule["record"] for group in load_rules()["groups"] for rule in group["rules"] if "record" in rule}


def dashboard_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard):
    """[(where, PromQL)] of every panel target and query variable."""
    out = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} target {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
        if match is None:
            raise AssertionError(f"variable {variable['name']}: not a label_values(expr, label) query: {query}")
        out.append((f"variable {variable['name']}", match.group(1)))
    return out


def substitute_variables(expr):
    for name in sorted(DASHBOARD_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, DASHBOARD_VARIABLES[name])
    return expr


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


class RulesAndDashboardFiles(unittest.TestCase):
    """The files alone, with promtool."""

    def test_promtool_check_rules(self):
        code, out = promtool("check", "rules", RULES)
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS", out)

    def test_promtool_rule_unit_tests_pass(self):
        code, out = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS", out)

    def test_rule_unit_tests_fail_when_a_rule_is_wrong(self):
        # The unit tests assert silence as well as firing: a drained backend
        # that alerts, a lower offload target, a stall threshold that no
        # longer fires, each make them fail.
        with open(RULES) as f:
            original = f.read()
        mutations = [
            ("mf_ingress_backend_drained == 1", "mf_ingress_backend_drained == 0"),
            ("expr: vector(0.3)", "expr: vector(0.05)"),
            ('scrape_duration_seconds{job=~"meshedflow-edge|meshedflow-ingress"} > 2',
             'scrape_duration_seconds{job=~"meshedflow-edge|meshedflow-ingress"} > 5'),
            ("expr: mf_edge_valkey_up == 0", "expr: mf_edge_valkey_up == 1"),
            ("time() - mf_ingress_tls_ocsp_next_update_timestamp_seconds > 0",
             "time() - mf_ingress_tls_ocsp_next_update_timestamp_seconds > 600"),
            ("mf_edge_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400",
             "mf_edge_tls_certificate_expiry_timestamp_seconds - time() < 7 * 86400"),
        ]
        directory = tempfile.mkdtemp(prefix="rules-", dir=run_dir())
        try:
            shutil.copy(RULE_TESTS, directory)
            for before, after in mutations:
                with self.subTest(mutation=after):
                    self.assertEqual(original.count(before), 1, f"{before!r} is not once in the rules")
                    with open(os.path.join(directory, "meshedflow-alerts.yml"), "w") as f:
                        f.write(original.replace(before, after))
                    code, out = promtool("test", "rules", os.path.join(directory, os.path.basename(RULE_TESTS)))
                    self.assertNotEqual(code, 0, f"the rule unit tests still pass with {after!r}:\n{out}")
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def test_every_alert_has_severity_summary_and_description(self):
        alerts = [rule for group in load_rules()["groups"] for rule in group["rules"] if "alert" in rule]
        self.assertGreaterEqual(len(alerts), 10)
        for rule in alerts:
            with self.subTest(alert=rule["alert"]):
                self.assertIn(rule["labels"]["severity"], ("warning", "critical"))
                self.assertTrue(rule["annotations"]["summary"])
                self.assertTrue(rule["annotations"]["description"])
        # Each alert of the unit-test file exists in the rules.
        with open(RULE_TESTS) as f:
            tested = set(re.findall(r"alertname: (\w+)", f.read()))
        self.assertLessEqual(tested, {rule["alert"] for rule in alerts})
        self.assertGreaterEqual(len(tested), 10)

    def test_dashboard_is_importable_with_datasource_variable(self):
        dashboard = load_dashboard()
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]),
                         ("datasource", "prometheus"))
        self.assertIsNone(dashboard["id"], "an exported id would clash on import")
        self.assertTrue(dashboard["uid"] and dashboard["title"])
        ids = [panel["id"] for panel in dashboard_panels(dashboard)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        queries = 0
        for panel in dashboard_panels(dashboard):
            with self.subTest(panel=panel["title"]):
                self.assertIn("gridPos", panel)
                if panel["type"] == "row":
                    continue
                self.assertEqual(panel["datasource"], {"type": "prometheus", "uid": "${datasource}"})
                self.assertTrue(panel["targets"])
                for target in panel["targets"]:
                    self.assertEqual(target["datasource"]["uid"], "${datasource}")
                    queries += 1
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                self.assertEqual(variable["datasource"]["uid"], "${datasource}")
        self.assertGreaterEqual(queries, 40)
        titles = " ".join(panel["title"] for panel in dashboard_panels(dashboard)).lower()
        for topic in ("offload", "peers", "joins", "signals", "errors by code", "handshakes", "tunnels", "backends",
                      "descriptors", "valkey"):
            self.assertIn(topic, titles)

    def test_dashboard_queries_are_valid_promql(self):
        # promtool parses each query as the expression of a recording rule.
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, (where, expr) in enumerate(dashboard_queries(load_dashboard())):
            concrete = substitute_variables(expr)
            self.assertNotIn("$", concrete, f"{where}: a variable the test does not know")
            lines += [f"      - record: dashboard:query{i}", f"        expr: {json.dumps(concrete)}"]
        path = os.path.join(run_dir(), "dashboard-queries.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        code, out = promtool("check", "rules", path)
        self.assertEqual(code, 0, out)

    def test_metric_name_extraction(self):
        self.assertEqual(
            metric_names('sum by (job, instance) (rate(mf_a_total{x="y z", b=~"$v"}[5m])) / on(job) group_left() '
                         'meshedflow:b:ratio > 0.05 and mf_c unless ignoring(le) mf_d offset 1h'),
            {"mf_a_total", "meshedflow:b:ratio", "mf_c", "mf_d"})
        self.assertEqual(metric_names("histogram_quantile(0.99, sum(rate(h_bucket[$__rate_interval])) by (le))"),
                         {"h_bucket"})
        self.assertEqual(metric_names("vector(1e6) or count(up == 0) or vector(0)"), {"up"})


class RealMetrics(unittest.TestCase):
    """One mf-edge in a cluster (Valkey), serving wss too, with a joined peer
    that sent stats, behind one mf-ingress stapling an OCSP response: the
    real /metrics of both."""

    @classmethod
    def setUpClass(cls):
        redis = class_fixture(cls, RedisServer())
        args = ["--valkey", redis.address, "--config", edge_config_file(limits=UNLIMITED_SOURCE)]
        cls.edge = class_fixture(cls, BackendEdge("edge-ops", args=args, shards=2, tls=True))
        ca = CertificateAuthority()
        issued = ca.issue()
        cls.ingress = class_fixture(cls, Ingress(backends=[cls.edge.address], certificates=[
            (issued["chain"], issued["key"], ca.ocsp_response(issued))]))
        cls.ingress.wait_backend_state(cls.edge.address, "up", timeout=30.0)
        client = SdkClient(cls.edge)
        try:
            client.join("ops-stream", "720p", "ops-peer")
            client.send({"type": "stats", "p2pBytes": 300, "cdnBytes": 100, "uploadedBytes": 50})
            client.send({"type": "ping", "t": 1})  # a round trip: the stats above were handled
            client.expect("pong")
            cls.edge_text = admin_get(cls.edge.admin_port, "/metrics").body.decode()
        finally:
            client.ws.close()
        cls.ingress_text = cls.ingress.admin("GET", "/metrics").body.decode()
        names = set()
        for text in (cls.edge_text, cls.ingress_text):
            samples, _ = parse_prometheus(text)
            names |= {name for name, _ in samples}
        cls.exported = names

    def test_promtool_check_metrics_edge(self):
        self.assertIn("mf_edge_valkey_up 1", self.edge_text)
        self.assertIn('mf_edge_stream_viewers{stream="ops-stream"} 1', self.edge_text)
        code, out = promtool("check", "metrics", stdin=self.edge_text.encode())
        self.assertEqual(code, 0, out)

    def test_promtool_check_metrics_ingress(self):
        self.assertIn(f'mf_ingress_backend_up{{backend="{self.edge.address}"}} 1', self.ingress_text)
        code, out = promtool("check", "metrics", stdin=self.ingress_text.encode())
        self.assertEqual(code, 0, out)

    def test_promtool_check_metrics_fails_on_bad_output(self):
        # The check is a real one: a counter without _total is reported.
        code, out = promtool("check", "metrics", stdin=b"# HELP mf_x A thing.\n# TYPE mf_x counter\nmf_x 1\n")
        self.assertNotEqual(code, 0, out)

    def test_rules_use_only_exported_metrics(self):
        known = self.exported | SCRAPE_SERIES | recorded_names()
        used = set()
        for name, expr in rule_expressions():
            names = metric_names(expr)
            used |= names
            with self.subTest(rule=name):
                self.assertEqual(names - known, set(), f"{name}: metrics that neither program exports")
        for name in ("mf_edge_valkey_up", "mf_ingress_backend_up", "mf_edge_p2p_bytes_total", "up",
                     "mf_edge_tls_certificate_expiry_timestamp_seconds",
                     "mf_ingress_tls_certificate_expiry_timestamp_seconds",
                     "mf_ingress_tls_ocsp_next_update_timestamp_seconds"):
            self.assertIn(name, used)

    def test_dashboard_uses_only_exported_metrics(self):
        known = self.exported | SCRAPE_SERIES | recorded_names()
        used = set()
        for where, expr in dashboard_queries(load_dashboard()):
            names = metric_names(expr)
            used |= names
            with self.subTest(query=where):
                self.assertEqual(names - known, set(), f"{where}: metrics that neither program exports")
        for name in ("mf_edge_stream_viewers", "mf_ingress_tunnels_active", "mf_edge_valkey_commands_total",
                     "mf_edge_join_to_peers_seconds_bucket"):
            self.assertIn(name, used)
        # The names a reader of docs/deploy.md is told about are there too.
        self.assertLessEqual({"mf_edge_connections", "mf_ingress_connections"}, used)


if __name__ == "__main__":
    unittest.main()
