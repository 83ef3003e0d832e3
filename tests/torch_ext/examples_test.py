"""Smoke runs of the Fashion-MNIST examples on a slice of the real data (the full runs are
measurements, reported in the README; they are not part of the test suite)."""
import json
import os
import subprocess
import sys

import pytest

# Bazel's runfiles, or (scripts/test.sh's pip pass, outside Bazel) the source tree.
SRC = (os.path.join(os.environ["TEST_SRCDIR"], "coset", "torch_ext", "examples") if "TEST_SRCDIR" in os.environ
       else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "torch_ext", "examples"))


def run_example(name, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC] + sys.path)
    out = subprocess.run([sys.executable, os.path.join(SRC, name), *args, "--json"], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_qat_example_runs_and_learns(model):
    result = run_example("qat_fashion_mnist.py", "--model", model, "--epochs", "1", "--limit", "3000")
    assert result["model"] == model
    variants = {r["variant"]: r for r in result["results"]}
    assert set(variants) == {"fp32", "weights", "weights+activations"}
    assert variants["fp32"]["test_accuracy"] > 0.6
    assert variants["weights"]["test_accuracy"] > 0.6
    assert abs(variants["weights"]["test_accuracy_on_codes"] - variants["weights"]["test_accuracy"]) < 0.02


@pytest.mark.parametrize("hook", [["none"], ["coset", "--mode", "reduce_scatter"]])
def test_ddp_example_runs_with_two_ranks(hook):
    result = run_example("ddp_fashion_mnist.py", "--world-size", "2", "--hook", *hook, "--epochs", "1",
                         "--limit", "4000", "--eval-every", "10", "--eval-images", "500")
    for key in ("test_accuracy", "final_loss", "grad_bytes_per_rank_per_step", "fp32_bytes_per_rank_per_step",
                "median_step_seconds", "train_seconds"):
        assert key in result
    assert result["test_accuracy"] > 0.5
    assert [point["step"] for point in result["curve"]] == [10, 20, 30]  # 2000 images per rank, batch 64
    assert result["curve"][-1]["seconds"] <= result["train_seconds"]
    if hook[0] == "coset":
        assert result["grad_bytes_per_rank_per_step"] * 4 < result["fp32_bytes_per_rank_per_step"]
        assert result["hook_stats"]["steps"] == 31


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
