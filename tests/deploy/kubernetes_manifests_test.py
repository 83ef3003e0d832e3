"""deploy/kubernetes validated against the Kubernetes API schema (deploy/kubernetes/validate:
kubernetes-models and the Prometheus Operator's CRD models, installed by scripts/setup.sh), a
broken copy refused with each of its faults named, and the security and probe settings the
manifests promise checked object by object."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

from deploy_files import deploy_path

KUBE = deploy_path("kubernetes")
VALIDATOR = os.path.join(KUBE, "validate", "validate.js")
MODULES = os.environ.get("COSET_K8S_VALIDATE_MODULES", "/opt/coset-tools/k8s-validate/node_modules")


def manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(KUBE, "*.yaml"))):
        docs += [(os.path.basename(path), d) for d in yaml.safe_load_all(open(path)) if d]
    return docs


def validate(docs):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(docs, f)
        f.flush()
        return subprocess.run(["node", VALIDATOR, f.name], capture_output=True, text=True,
                              env=dict(os.environ, NODE_PATH=MODULES))


def pod_specs():
    """(file, object name, pod spec) of every Pod and workload template."""
    for file, d in manifests():
        if d["kind"] == "Pod":
            yield file, d["metadata"]["name"], d["spec"]
        elif d["kind"] in ("DaemonSet", "Deployment", "StatefulSet"):
            yield file, d["metadata"]["name"], d["spec"]["template"]["spec"]


class KubernetesManifestsTest(unittest.TestCase):
    def test_every_manifest_is_valid_against_the_api_schema(self):
        self.assertTrue(os.path.isdir(MODULES), f"{MODULES} missing: run scripts/setup.sh")
        docs = [d for _, d in manifests()]
        kinds = sorted(d["kind"] for d in docs)
        self.assertEqual(kinds, ["DaemonSet", "Namespace", "NetworkPolicy", "Pod", "Pod", "PodMonitor"])
        r = validate(docs)
        print(r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count("valid   "), len(docs))

    def test_the_validator_refuses_faults(self):
        docs = [d for _, d in manifests()]
        daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
        cosetd = daemonset["spec"]["template"]["spec"]["containers"][0]
        cosetd["securityContext"]["runAsNonRot"] = True  # misspelt field
        cosetd["ports"][0]["containerPort"] = "9464"  # wrong type
        monitor = next(d for d in docs if d["kind"] == "PodMonitor")
        monitor["spec"]["podMetricsEndpoints"][0]["scrapeEvery"] = "15s"  # not in the CRD
        policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
        policy["spec"]["policyTypes"] = ["Sideways"]  # outside the enum
        r = validate(docs)
        self.assertEqual(r.returncode, 1, r.stdout)
        for fault in ("runAsNonRot", "DaemonSet/cosetd: data/spec/template/spec/containers/0/ports/0/containerPort",
                      "scrapeEvery", "Sideways"):
            self.assertIn(fault, r.stdout)

    def test_pods_run_unprivileged_with_seccomp_and_read_only_roots(self):
        for file, name, spec in pod_specs():
            pod_security = spec.get("securityContext", {})
            self.assertEqual(pod_security.get("seccompProfile", {}).get("type"), "RuntimeDefault", (file, name))
            self.assertFalse(spec.get("automountServiceAccountToken", True), (file, name))
            for c in spec.get("initContainers", []) + spec["containers"]:
                sc = c.get("securityContext", {})
                where = (file, name, c["name"])
                self.assertIs(sc.get("allowPrivilegeEscalation"), False, where)
                self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], where)
                if c["name"] == "socket-directory":
                    # The DaemonSet's one root step: chown of the host socket directory, CHOWN only.
                    self.assertEqual(sc["capabilities"].get("add"), ["CHOWN"], where)
                    continue
                self.assertTrue(sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")), where)
                self.assertIsNone(sc.get("capabilities", {}).get("add"), where)
                if c["name"] == "cosetd":
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)

    def test_every_cosetd_has_probes_metrics_and_resources(self):
        found = {}
        for file, name, spec in pod_specs():
            for c in spec.get("initContainers", []) + spec["containers"]:
                if c["name"] != "cosetd":
                    continue
                found[file] = c
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    self.assertIn(probe, c, (file, probe))
                    p = c[probe]
                    # gRPC health probes where a TCP gRPC port exists, exec (cosetctl health) otherwise.
                    tcp = any(a.startswith("--grpc=") and not a.startswith("--grpc=unix:") for a in c["args"])
                    if tcp:
                        self.assertIn("grpc", p, (file, probe))
                    else:
                        self.assertEqual(p["exec"]["command"][-1], "health", (file, probe))
                self.assertIn("metrics", [port["name"] for port in c["ports"]])
                self.assertIn("memory", c["resources"]["limits"])
                self.assertIn("cpu", c["resources"]["requests"])
        self.assertEqual(sorted(found), ["cosetd-daemonset.yaml", "cosetd-sidecar.yaml"])
        # The native sidecar: an init container that keeps running beside the app.
        self.assertEqual(found["cosetd-sidecar.yaml"].get("restartPolicy"), "Always")


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
