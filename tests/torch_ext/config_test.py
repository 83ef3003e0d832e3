"""coset_torch.Config is the codec's field table: every field, with the C++ names and defaults,
passes through the one-string op schema, and each field's name is also its cosetctl flag."""
import dataclasses
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

import coset_torch

# Bazel's runfiles, or (scripts/test.sh's pip pass, outside Bazel) the main build's binary, which
# the script names: bazel-bin follows whichever configuration built last.
COSETCTL = (os.path.join(os.environ["TEST_SRCDIR"], "coset", "client", "cosetctl") if "TEST_SRCDIR" in os.environ
            else os.environ["COSETCTL"])


def test_fields_are_the_tables_in_order():
    names = [f.name for f in dataclasses.fields(coset_torch.Config)]
    table = [line.split("\t")[0] for line in torch.ops.coset.codec_fields().splitlines()]
    assert names == table
    assert names[:11] == ["lattice", "q", "M", "beta", "alpha", "block", "scale", "rotate", "seed", "t_max", "on_cap"]
    c = coset_torch.Config()
    assert (c.lattice, c.q, c.M, c.scale, c.seed, c.t_max, c.on_cap, c.rotate) == \
        ("D4", 4, 2, "rms", 24301, 31, "fail", False)
    assert coset_torch.Config.CHOICES == {"scale": ("none", "rms", "absmax"), "on_cap": ("fail", "zero")}


def test_text_round_trips_exactly():
    c = coset_torch.Config(beta=0.1234567, alpha=0.3, seed=0, t_max=0, on_cap="zero")
    text = c.text()
    assert "seed=0" in text and "t_max=0" in text and "M=2" in text
    # The ops parse it with the C++ table: the blob records the very values.
    blob = coset_torch.encode(torch.randn(4, 64), c)
    info = subprocess.run([COSETCTL, "info", "/dev/stdin", "--json"], input=blob.numpy().tobytes(),
                          capture_output=True, check=True).stdout
    assert b'"t_max":0' in info and b'"seed":0' in info


def flags_for(config):
    """cosetctl flags for the fields that differ from the defaults: --<field name> <value>."""
    flags = []
    default = coset_torch.Config()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value == getattr(default, f.name):
            continue
        if isinstance(value, bool):
            flags.append(f"--{f.name}" if value else f"--no-{f.name}")
        else:
            flags += [f"--{f.name}", str(value)]
    return flags


@pytest.mark.parametrize("config", [
    coset_torch.Config(t_max=4, on_cap="zero", scale="none", beta=0.05),
    coset_torch.Config(lattice="E8", M=1, rotate=True, seed=0, block=64),
    coset_torch.Config(alpha=0.5, scale="absmax"),
])
def test_every_field_name_is_also_the_cli_flag_and_gives_the_same_blob(config):
    torch.manual_seed(1)
    x = torch.randn(3, 200)
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x.numpy())
        subprocess.run([COSETCTL, "encode", os.path.join(d, "x.npy"), os.path.join(d, "x.coset"), *flags_for(config)],
                       check=True, capture_output=True)
        want = open(os.path.join(d, "x.coset"), "rb").read()
    assert coset_torch.encode(x, config).numpy().tobytes() == want


def test_bad_text_is_refused_with_the_field_named():
    with pytest.raises(RuntimeError, match="unknown codec field 'levels'"):
        torch.ops.coset.encode(torch.randn(8), "levels=2")
    with pytest.raises(RuntimeError, match=r"t_max \(=99\)"):
        coset_torch.encode(torch.randn(8), coset_torch.Config(t_max=99))


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
