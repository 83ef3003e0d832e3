"""Builds coset_client for `pip install ./client/python` (pyproject.toml): the package, plus its
coset.v1 stubs generated from the repository's proto/coset/v1/coset.proto (never checked in; the
same generate_stubs.sh as the Bazel build)."""
import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto", "coset", "v1", "coset.proto")


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        if not os.path.exists(PROTO):
            raise RuntimeError(f"{PROTO} not found: install from a checkout of the coset repository")
        subprocess.run(["bash", os.path.join(HERE, "generate_stubs.sh"), PROTO,
                        os.path.join(self.build_lib, "coset_client")], check=True)


setup(cmdclass={"build_py": BuildPyWithStubs})
