"""Which coset_torch the tests import: under Bazel the source package with the Bazel-built
library; in scripts/test.sh's pip pass (COSET_EXPECT_PACKAGE_ROOT set) the pip-installed package,
whose library was built by setup.py and lives inside it."""
import os
import sys

import pytest
import torch

import coset_torch


def test_the_package_and_its_library_are_the_expected_build():
    root = os.environ.get("COSET_EXPECT_PACKAGE_ROOT")
    assert os.path.exists(coset_torch.LIBRARY)
    if root:
        package = os.path.dirname(os.path.realpath(coset_torch.__file__))
        assert package.startswith(os.path.realpath(root)), package
        assert os.path.dirname(os.path.realpath(coset_torch.LIBRARY)) == package
        # Built without gRPC: the daemon ops are absent, and asking for them says why.
        assert not hasattr(torch.ops.coset, "daemon_bucket_encode")
    else:
        assert hasattr(torch.ops.coset, "daemon_bucket_encode")
    # Every DDP op is there in both builds.
    for op in ("bucket_layout", "bucket_encode", "bucket_decode", "block_absmax", "exact_sum_encode",
               "exact_sum_decode"):
        assert hasattr(torch.ops.coset, op), op


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
