"""Starts a real cosetd for Python tests: a private socket directory under /tmp, a ready file, and
a clean stop (SIGTERM, then the directory goes)."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

_RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", ""), "coset")


def binary(package, name):
    """A built binary: from the test's runfiles (or a py_binary's, next to this file), from
    $COSET_BAZEL_BIN (a Bazel bin directory, for tests run against a pip install), or from
    bazel-bin when run by hand."""
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")  # a checkout or runfiles tree
    for root in (_RUNFILES, os.environ.get("COSET_BAZEL_BIN", ""), repo, os.path.join(repo, "bazel-bin")):
        path = os.path.join(root, package, name)
        if root and os.path.exists(path):
            return path
    raise FileNotFoundError(f"{package}/{name} is not built (bazel build //{package}:{name})")


def stop_process(process, timeout=30):
    """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code. Idempotent."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Cosetd:
    """cosetd on unix:<dir>/d.sock (+ its shared-memory side socket) and, unless metrics=False,
    /metrics on a free loopback port. Use as a context manager."""

    def __init__(self, *flags, metrics=True):
        cosetd = binary("server", "cosetd")  # before anything is made that would need cleaning up
        self.dir = tempfile.mkdtemp(prefix="cosetd-", dir="/tmp")  # socket paths must stay short
        self.address = f"unix:{self.dir}/d.sock"
        ready = os.path.join(self.dir, "ready")
        args = [cosetd, "--grpc", self.address, "--ready-file", ready,
                "--metrics", "127.0.0.1:0" if metrics else "off", "--log-level", "warn", *flags]
        self.log = open(os.path.join(self.dir, "cosetd.log"), "w")
        self.process = subprocess.Popen(args, stderr=self.log)
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if self.process.poll() is not None or time.time() > deadline:
                self.log.flush()
                log = open(self.log.name).read()  # read before stop() removes the directory
                self.stop()
                raise RuntimeError(f"cosetd did not start: {log}")
            time.sleep(0.02)
        entries = [line.split(" ", 1) for line in open(ready).read().splitlines()]
        self.grpc = [value for key, value in entries if key == "grpc"]  # every bound address (port 0 resolved)
        self.metrics = dict(entries)["metrics"]  # "127.0.0.1:PORT" or "off"

    def stop(self):
        """SIGTERM and wait; returns the exit code. Idempotent."""
        stop_process(self.process)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
