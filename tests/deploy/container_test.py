"""deploy/container/Containerfile against the binaries CI builds: its runtime stage installs
exactly the Debian packages that own the libraries cosetd and cosetctl load (`ldd`, `dpkg -S`), no
more and no fewer, runs as a non-root user, and copies the binaries the build stage makes. (The
image is not built here: no container daemon runs on these machines, and base images cannot be
pulled; these are the checks that can run.)"""

import os
import re
import subprocess
import sys
import unittest

from cosetd_process import binary
from deploy_files import deploy_path

CONTAINERFILE = deploy_path("container", "Containerfile")


def runtime_packages():
    text = open(CONTAINERFILE).read()
    block = re.search(r"# runtime-packages: begin.*?\n(.*?)# runtime-packages: end", text, re.S).group(1)
    return set(re.findall(r"^\s+([a-z0-9][a-z0-9.+-]+) \\$", block, re.M))


def owning_package(library):
    for path in (library, os.path.realpath(library)):
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0]
    raise AssertionError(f"no Debian package owns {library}")


class ContainerfileTest(unittest.TestCase):
    def test_runtime_packages_are_exactly_the_linked_libraries_packages(self):
        needed = {}
        for b in (binary("server", "cosetd"), binary("client", "cosetctl")):
            out = subprocess.run(["ldd", b], capture_output=True, text=True, check=True).stdout
            self.assertNotIn("not found", out)
            for library in re.findall(r"=> (/\S+)", out):
                needed.setdefault(owning_package(library), library)
        listed = runtime_packages()
        print(f"{len(needed)} packages own the libraries cosetd and cosetctl load; the Containerfile lists {len(listed)}")
        self.assertEqual(sorted(set(needed) - listed), [], "libraries whose package the image lacks")
        self.assertEqual(sorted(listed - set(needed)), [], "packages the binaries do not load")

    def test_runs_unprivileged_and_ships_both_binaries(self):
        text = open(CONTAINERFILE).read()
        final = text[text.rindex("\nFROM "):]
        self.assertIn("FROM debian:bookworm-slim", final)
        self.assertRegex(final, r"\nUSER 10001:10001\n")
        self.assertIn("useradd --system --uid 10001", final)
        self.assertIn("COPY --from=build /out/cosetd /out/cosetctl /usr/local/bin/", final)
        self.assertIn("bazel build -c opt //server:cosetd //client:cosetctl", text)


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
