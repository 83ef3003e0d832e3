"""deploy/systemd checked by systemd itself (`systemd-analyze verify` clean for the service and the
socket unit, `systemd-analyze security --offline=yes` exposure at most 2.0), and cosetd's side of
the units: READY=1, then watchdog pings at half of WATCHDOG_USEC while it serves, STOPPING=1 on
SIGTERM, read from a real notify socket as systemd would; and socket activation through systemd's
own `systemd-socket-activate` (both sockets passed, adopted, and left in place on exit)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

import coset_client
from cosetd_process import binary
from deploy_files import deploy_path

SYSTEMD = deploy_path("systemd")
UNIT = os.path.join(SYSTEMD, "cosetd.service")
MAX_EXPOSURE = 2.0


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="coset-systemd-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.work, True)
        # The unit as shipped, with ExecStart pointing at the binary just built (verify checks that
        # the executable exists).
        text = open(UNIT).read()
        self.assertIn("ExecStart=/usr/local/bin/cosetd ", text)
        self.unit = os.path.join(self.work, "cosetd.service")
        with open(self.unit, "w") as f:
            f.write(text.replace("/usr/local/bin/cosetd", os.path.abspath(binary("server", "cosetd"))))

    def test_verify_is_clean(self):
        shutil.copy(os.path.join(SYSTEMD, "cosetd.socket"), self.work)
        shutil.copytree(os.path.join(SYSTEMD, "cosetd.service.d"), os.path.join(self.work, "cosetd.service.d"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", self.unit, os.path.join(self.work, "cosetd.socket")],
                           capture_output=True, text=True)
        print("systemd-analyze verify:", (r.stdout + r.stderr).strip() or "clean")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "")

    def test_security_exposure_is_at_most_2(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", self.unit],
                           capture_output=True, text=True)
        print("\n".join(line for line in r.stdout.splitlines() if "✗" in line or "Overall" in line))
        score = re.search(r"Overall exposure level for cosetd.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(score, r.stdout + r.stderr)
        self.assertLessEqual(float(score.group(1)), MAX_EXPOSURE)

    def test_ready_watchdog_and_stopping_notifications(self):
        notify_path = os.path.join(self.work, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(10)
        self.addCleanup(notify.close)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="600000")  # pings every 300 ms
        env.pop("WATCHDOG_PID", None)
        daemon = subprocess.Popen([binary("server", "cosetd"), "--grpc", f"unix:{self.work}/d.sock",
                                   "--metrics", "off", "--log-level", "warn"], env=env)
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())
        messages = []
        start = None
        while start is None or time.time() - start < 3:
            message = notify.recv(4096).decode()
            messages.append(message)
            if "READY=1" in message:
                start = time.time()
        pings = messages.count("WATCHDOG=1")
        print(f"notifications in the first 3 s after READY=1: {pings} watchdog pings")
        self.assertEqual(messages[0], "READY=1")
        self.assertGreaterEqual(pings, 5)  # 10 at 300 ms; a loaded CI machine may miss a few
        daemon.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages[-1]:
            messages.append(notify.recv(4096).decode())
        self.assertEqual(daemon.wait(timeout=30), 0)

    def test_socket_activation(self):
        sock = os.path.join(self.work, "d.sock")
        activator = subprocess.Popen(
            ["systemd-socket-activate", "-l", sock, "-l", sock + ".shm", binary("server", "cosetd"),
             "--grpc", f"unix:{sock}", "--metrics", "off", "--log-level", "warn"], stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: activator.poll() is None and activator.kill())
        deadline = time.time() + 10
        while not os.path.exists(sock + ".shm") and time.time() < deadline:
            time.sleep(0.02)
        # The first connection starts cosetd, which adopts both sockets: a 2 MiB encode goes
        # through the shared-memory side socket systemd bound.
        with coset_client.Client(f"unix:{sock}") as c:
            self.assertTrue(c.health())
            x = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)
            blob, _ = c.encode(x)
            self.assertTrue(c.used_shared_memory)
            np.testing.assert_array_equal(c.decode(blob), c.quantize(x))
        activator.send_signal(signal.SIGTERM)  # it exec'd cosetd: same process
        self.assertEqual(activator.wait(timeout=30), 0, activator.stderr.read())
        # The sockets belong to the socket unit: still there for the next activation.
        self.assertTrue(os.path.exists(sock) and os.path.exists(sock + ".shm"))


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
