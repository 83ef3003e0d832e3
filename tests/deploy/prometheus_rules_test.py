"""deploy/prometheus with Debian's promtool: the configuration and rules check clean, the rules'
unit tests (synthetic series for every alert, firing and not firing) pass, every alert carries a
summary and a runbook and is unit tested, and the dashboard file is what make_dashboard.py writes."""

import json
import os
import subprocess
import sys
import unittest

import yaml

from deploy_files import deploy_path

PROM = deploy_path("prometheus")
GRAFANA = deploy_path("grafana")


def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=PROM)
    print(f"$ promtool {' '.join(args)}\n{(r.stdout + r.stderr).strip()}")
    return r


class PrometheusRulesTest(unittest.TestCase):
    def test_config_and_rules_check_clean(self):
        self.assertEqual(promtool("check", "config", "prometheus.yml").returncode, 0)
        self.assertEqual(promtool("check", "rules", "cosetd-rules.yml").returncode, 0)

    def test_rule_unit_tests_pass(self):
        r = promtool("test", "rules", "cosetd-rules.test.yml")
        self.assertEqual(r.returncode, 0)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_alert_has_a_runbook_and_a_firing_unit_test(self):
        rules = yaml.safe_load(open(os.path.join(PROM, "cosetd-rules.yml")))
        alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
        tests = yaml.safe_load(open(os.path.join(PROM, "cosetd-rules.test.yml")))["tests"]
        fired, quiet = set(), set()
        for t in tests:
            for case in t.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else quiet).add(case["alertname"])
        for name, rule in alerts.items():
            self.assertTrue(rule["annotations"].get("runbook"), name)
            self.assertTrue(rule["annotations"].get("summary"), name)
            self.assertIn(rule["labels"]["severity"], ("warning", "critical"), name)
            self.assertIn(name, fired, f"{name} never fires in the unit tests")
            self.assertIn(name, quiet, f"{name} is never tested not firing")


class DashboardTest(unittest.TestCase):
    def test_checked_in_dashboard_is_the_generated_one(self):
        sys.path.insert(0, GRAFANA)
        import make_dashboard
        self.assertEqual(open(os.path.join(GRAFANA, "cosetd.json")).read(), make_dashboard.render(),
                         "deploy/grafana/cosetd.json is stale: run python3 deploy/grafana/make_dashboard.py")

    def test_panels_use_the_datasource_and_instance_variables_and_have_units(self):
        d = json.load(open(os.path.join(GRAFANA, "cosetd.json")))
        self.assertEqual([v["name"] for v in d["templating"]["list"]], ["datasource", "instance"])
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for p in d["panels"]:
            for t in p.get("targets", []):
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
                self.assertIn('instance=~"$instance"', t["expr"], p["title"])
            if p.get("targets"):
                self.assertTrue(p["fieldConfig"]["defaults"]["unit"], p["title"])
                self.assertTrue(p.get("description"), p["title"])


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
