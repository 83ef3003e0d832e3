"""The dashboard and the rules against a real Prometheus (Debian's `prometheus`) scraping a real
cosetd under a bounded mixed load: every dashboard query, the instance variable and every recording
rule must return data through Prometheus' HTTP API, every rule must load and evaluate healthy, the
alerts the load provokes must be pending, and `promtool check metrics` must find nothing on
/metrics. Prints each query with its result count, and renders the main panels to a PNG
($COSET_DASHBOARD_PNG, or the test's undeclared outputs)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import numpy as np
import torch
import yaml

import coset_client
import coset_torch
from coset_torch import ddp
from cosetd_process import Cosetd, stop_process
from deploy_files import deploy_path

RULES = deploy_path("prometheus", "cosetd-rules.yml")
DASHBOARD = deploy_path("grafana", "cosetd.json")
LOAD_SECONDS = 12
# Grafana's variables, as Grafana would substitute them for "All instances" and a short range.
GRAFANA_VARIABLES = {"$instance": ".*", "$__rate_interval": "15s", "$__range": "5m"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_queries():
    """(panel title, legend, PromQL with Grafana's variables substituted) of every panel target."""
    out = []
    for panel in json.load(open(DASHBOARD))["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], target.get("legendFormat", ""), expr))
    return out


def drive_load(address, stop):
    """Mixed traffic until `stop`: encodes (inline and shared memory) with two configurations,
    decodes, one configuration whose beta is far too small for its data (most chunks overload, many
    reach t_max: clipped), resident tensors and inner products, bad requests, a decode refused for
    the daemon's (deliberately small) memory budget, and the DDP hook's offloaded bucket encodes
    (torch extension)."""
    rng = np.random.default_rng(0)
    normal = rng.standard_normal((256, 1024)).astype(np.float32)  # 1 MiB: the shared-memory path
    small = normal[:64, :256]
    clipping = {"beta": 0.1, "t_max": 2, "on_cap": "zero"}  # registered: its own `config` label
    queries = rng.standard_normal((4, 1024)).astype(np.float32)
    with coset_client.Client(address) as c, coset_client.Client(address, shm_threshold_bytes=0) as inline:
        c.put_tensor("load-w", c.encode(normal)[0], overwrite=True)
        clipping_id = c.register_config(clipping)
        gradient, residual = torch.randn(1 << 16, generator=torch.Generator().manual_seed(0)), torch.zeros(1 << 16)
        hook_config = ddp.default_config().text()
        # 64 MiB decoded inline: the reply alone exceeds the 48 MiB budget (RESOURCE_EXHAUSTED).
        too_big = c.encode(np.zeros((4096, 4096), np.float32))[0]
        while not stop.is_set():
            blob, _ = c.encode(normal)
            c.decode(blob)
            inline.encode(small, {"lattice": "E8"})
            inline.encode(small, clipping_id)
            c.inner_product("load-w", queries)
            c.quantize(normal[:8])
            torch.ops.coset.daemon_bucket_encode(gradient, residual, address, hook_config, 2)
            for bad in (lambda: inline.encode(small, {"lattice": "Q9"}),
                        lambda: inline.decode(b"not a blob"),
                        lambda: inline.decode(too_big)):
                try:
                    bad()
                except coset_client.CosetError:
                    pass
            time.sleep(0.05)


class RealPrometheusTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="coset-prom-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.daemon = Cosetd("--memory-budget", str(48 << 20))
        self.addCleanup(self.daemon.stop)
        # The shipped rules, evaluated every second instead of every 15 s.
        rules = yaml.safe_load(open(RULES))
        for group in rules["groups"]:
            group["interval"] = "1s"
        with open(os.path.join(self.work, "rules.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": ["rules.yml"],
                  "scrape_configs": [{"job_name": "cosetd", "static_configs": [{"targets": [self.daemon.metrics]}]}]}
        with open(os.path.join(self.work, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        self.api = f"http://127.0.0.1:{free_port()}"
        self.prometheus_log = open(os.path.join(self.work, "prometheus.log"), "w")
        self.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={self.work}/prometheus.yml", f"--storage.tsdb.path={self.work}/data",
             f"--web.listen-address={self.api[len('http://'):]}", "--web.enable-lifecycle"],
            stdout=self.prometheus_log, stderr=subprocess.STDOUT, cwd=self.work)
        self.addCleanup(self.stop_prometheus)
        self.wait_for(lambda: self.get("/-/ready", raw=True) is not None, "Prometheus to be ready")

    def stop_prometheus(self):
        stop_process(self.prometheus)
        self.prometheus_log.close()

    def get(self, path, raw=False, **params):
        url = self.api + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read()
        except OSError:
            return None
        return body if raw else json.loads(body)

    def query(self, expr):
        reply = self.get("/api/v1/query", query=expr)
        self.assertIsNotNone(reply, f"no answer for {expr}")
        self.assertEqual(reply["status"], "success", f"{expr}: {reply}")
        return reply["data"]["result"]

    def wait_for(self, condition, what, timeout=60):
        deadline = time.time() + timeout
        while not condition():
            if self.prometheus.poll() is not None or time.time() > deadline:
                self.fail(f"timed out waiting for {what}; Prometheus log:\n" + open(self.prometheus_log.name).read())
            time.sleep(0.25)

    def test_every_panel_and_rule_has_data(self):
        self.wait_for(lambda: self.query('up{job="cosetd"} == 1'), "the first scrape of cosetd")
        stop = threading.Event()
        load = threading.Thread(target=drive_load, args=(self.daemon.address, stop))
        start = time.time()
        load.start()
        try:
            time.sleep(LOAD_SECONDS)
        finally:
            stop.set()
            load.join()
        end = time.time()
        # Rates need two scrapes after the load, recorded ratios one more evaluation.
        self.wait_for(lambda: self.query("coset:requests_refused:rate5m > 0"), "the recorded refusals")
        time.sleep(3)

        empty = []
        print(f"\n{'results':>7}  dashboard panel / query")
        for title, legend, expr in dashboard_queries():
            n = len(self.query(expr))
            print(f"{n:7d}  {title} [{legend}]: {expr}")
            if n == 0:
                empty.append(f"panel {title!r}: {expr}")
        instances = self.get("/api/v1/label/instance/values", **{"match[]": "coset_requests_total"})["data"]
        print(f"{len(instances):7d}  variable $instance: label_values(coset_requests_total, instance)")
        self.assertEqual(instances, [self.daemon.metrics])
        clients = self.get("/api/v1/label/client/values", **{"match[]": "coset_requests_total"})["data"]
        print(f"{len(clients):7d}  client kinds: {', '.join(clients)}")
        self.assertEqual(clients, ["python", "torch"])

        print(f"\n{'results':>7}  recording rule")
        rules = yaml.safe_load(open(RULES))
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    n = len(self.query(rule["record"]))
                    print(f"{n:7d}  {rule['record']}")
                    if n == 0:
                        empty.append(f"rule {rule['record']}")
        self.assertEqual(empty, [], "queries without data")

        # Every rule loaded and evaluates without error; the alerts this load provokes are pending.
        loaded = self.get("/api/v1/rules")["data"]["groups"]
        states = {}
        for group in loaded:
            for rule in group["rules"]:
                self.assertEqual(rule["health"], "ok", rule)
                if rule["type"] == "alerting":
                    states[rule["name"]] = rule["state"]
        print("\nalerts: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())))
        self.assertEqual(len(loaded), len(rules["groups"]))
        for alert in ("CosetdErrorRatioHigh", "CosetdOverloadRateHigh", "CosetdChunksClipped",
                      "CosetdRequestsRefused"):
            self.assertEqual(states.get(alert), "pending", f"{alert}: {states}")
        for alert in ("CosetdDown", "CosetdNotScraped", "CosetdMemoryBudgetNearlyExhausted"):
            self.assertEqual(states.get(alert), "inactive", f"{alert}: {states}")

        # The exposition format itself is clean.
        metrics = urllib.request.urlopen(f"http://{self.daemon.metrics}/metrics", timeout=10).read()
        lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True)
        print("promtool check metrics:", (lint.stdout + lint.stderr).decode().strip() or "no findings")
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertEqual((lint.stdout + lint.stderr).strip(), b"")

        out_dir = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.work)
        render_png(self, os.environ.get("COSET_DASHBOARD_PNG", os.path.join(out_dir, "dashboard.png")),
                   start - 5, time.time())


# The panels the PNG shows: (dashboard panel title, unit label).
MAIN_PANELS = [("Raw and saved bytes", "bytes/s"), ("Compression ratio by configuration", "x"),
               ("First-try overload rate by configuration", "fraction"),
               ("Requests by method and code", "req/s"), ("Errors by method and code", "req/s"),
               ("Latency p50 and p99 by method", "s"), ("Memory budget", "bytes"),
               ("Clipped chunks by configuration", "fraction"), ("Shared-memory bytes", "bytes")]


def render_png(test, path, start, end):
    """The main panels from the same Prometheus data, as Grafana would draw them (a screenshot
    needs a Grafana, which is not here)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = {}
    for title, legend, expr in dashboard_queries():
        queries.setdefault(title, []).append((legend, expr))
    fig, axes = plt.subplots(3, 3, figsize=(18, 11))
    for ax, (title, unit) in zip(axes.flat, MAIN_PANELS):
        for legend, expr in queries[title]:
            reply = test.get("/api/v1/query_range", query=expr, start=start, end=end, step=1)
            for s in reply["data"]["result"]:
                t = np.array([float(v[0]) for v in s["values"]]) - start
                y = np.array([float(v[1]) for v in s["values"]])
                label = legend
                for k, v in s["metric"].items():
                    label = label.replace("{{" + k + "}}", v)
                ax.plot(t, y, label=label or expr[:40])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds")
        ax.set_ylabel(unit)
        ax.legend(fontsize=6, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle("cosetd dashboard, main panels, during the real-Prometheus load test (1 s scrapes)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"dashboard PNG: {path}")


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
