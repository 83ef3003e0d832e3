"""deploy/systemd/cosetd.service checked by systemd itself (`systemd-analyze verify` clean, and
`systemd-analyze security --offline=yes` exposure at most 2.0), and cosetd's side of the unit:
READY=1, then watchdog pings at half of WATCHDOG_USEC while it serves, STOPPING=1 on SIGTERM, read
from a real notify socket as systemd would."""

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

from cosetd_process import binary

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(os.environ.get("TEST_SRCDIR", ""), "coset")
if not os.path.isdir(os.path.join(ROOT, "deploy")):
    ROOT = os.path.join(HERE, "..", "..")
UNIT = os.path.join(ROOT, "deploy", "systemd", "cosetd.service")
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
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", self.unit], capture_output=True, text=True)
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
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")  # pings every 200 ms
        env.pop("WATCHDOG_PID", None)
        daemon = subprocess.Popen([binary("server", "cosetd"), "--grpc", f"unix:{self.work}/d.sock",
                                   "--metrics", "off", "--log-level", "warn"], env=env)
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())
        messages = []
        start = None
        while start is None or time.time() - start < 1.5:
            message = notify.recv(4096).decode()
            messages.append(message)
            if "READY=1" in message:
                start = time.time()
        pings = messages.count("WATCHDOG=1")
        print(f"notifications in the first 1.5 s after READY=1: {pings} watchdog pings")
        self.assertEqual(messages[0], "READY=1")
        self.assertGreaterEqual(pings, 4)  # 7 at 200 ms; a loaded CI machine may lose a few
        daemon.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages[-1]:
            messages.append(notify.recv(4096).decode())
        self.assertEqual(daemon.wait(timeout=30), 0)


if __name__ == "__main__":
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
