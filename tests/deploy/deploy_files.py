"""Where deploy/ is for the tests of tests/deploy: in the test's runfiles under Bazel, else in the
checkout this file belongs to (run by hand)."""

import os

_RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", ""), "coset")
_ROOT = _RUNFILES if os.path.isdir(os.path.join(_RUNFILES, "deploy")) else \
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def deploy_path(*parts):
    return os.path.join(_ROOT, "deploy", *parts)
