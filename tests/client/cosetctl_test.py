"""End-to-end tests of the cosetctl binary: real .npy files in, real .coset blobs out."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import numpy as np

COSETCTL = os.path.join(os.environ.get("TEST_SRCDIR", ""), "coset", "client", "cosetctl")
if not os.path.exists(COSETCTL):
    COSETCTL = os.path.join(os.path.dirname(__file__), "..", "..", "bazel-bin", "client", "cosetctl")


def run(*args, check=True):
    proc = subprocess.run([COSETCTL, *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"cosetctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def run_json(*args):
    return json.loads(run(*args, "--json").stdout)


def snr_db(x, y):
    return 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((x.astype(np.float64) - y) ** 2))


class CosetctlTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_round_trip_keeps_shape_and_dtype(self):
        rng = np.random.default_rng(0)
        for shape, dtype in [((5, 3, 37), np.float32), ((1000,), np.float64), ((7, 1), np.float32), ((64, 256), np.float32),
                             ((16, 64), np.float16)]:
            x = rng.standard_normal(shape).astype(dtype)
            np.save(self.path("x.npy"), x)
            enc = run_json("encode", self.path("x.npy"), self.path("x.coset"))
            self.assertEqual(enc["shape"], list(shape))
            self.assertEqual(run_json("info", self.path("x.coset"))["dtype"], np.dtype(dtype).name)
            dec = run_json("decode", self.path("x.coset"), self.path("y.npy"))
            self.assertEqual(dec["shape"], list(shape))
            y = np.load(self.path("y.npy"))
            self.assertEqual(y.shape, shape)
            self.assertEqual(y.dtype, dtype)
            self.assertGreater(snr_db(x, y), 18.0, shape)

    def test_info_reports_parameters_and_bits(self):
        x = np.random.default_rng(1).standard_normal((512, 1024)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        run("encode", self.path("x.npy"), self.path("x.coset"), "--lattice", "E8", "--q", "4", "--M", "2")
        info = run_json("info", self.path("x.coset"))
        self.assertEqual(info["lattice"], "E8")
        self.assertEqual((info["q"], info["M"]), (4, 2))
        self.assertEqual(info["shape"], [512, 1024])
        self.assertEqual(sum(info["t_histogram"]), info["chunks"])
        self.assertEqual(info["bytes"], os.path.getsize(self.path("x.coset")))
        self.assertLess(info["stored_bits_per_entry"], info["rate_bits_per_entry"] + 16 / 256 + 0.1)

    def test_default_d4_stays_under_4_4_bits_per_entry(self):
        x = np.random.default_rng(2).standard_normal((256, 4096)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        enc = run_json("encode", self.path("x.npy"), self.path("x.coset"))
        self.assertLessEqual(enc["stored_bits_per_entry"], 4.40)

    def test_scale_none_rotation_and_flags(self):
        x = np.random.default_rng(3).standard_normal((64, 100)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        for flags in (["--scale", "none"], ["--rotate", "--block", "64"], ["--scale", "absmax", "--q", "8"],
                      ["--lattice", "Z4", "--q", "5", "--M", "1"], ["--lattice", "A2", "--q", "3"]):
            run("encode", self.path("x.npy"), self.path("x.coset"), *flags)
            run("decode", self.path("x.coset"), self.path("y.npy"))
            self.assertGreater(snr_db(x, np.load(self.path("y.npy"))), 5.0, flags)

    def test_eval_reports_the_documented_keys(self):
        out = run_json("eval", "--lattice", "D4", "--q", "4", "--M", "2", "--scale", "none", "--samples", "65536",
                       "--data-seed", "7")
        for key in ("rate_bits_per_entry", "stored_bits_per_entry", "mse", "snr_db", "overload_rate", "beta"):
            self.assertIn(key, out)
        self.assertAlmostEqual(out["mse"], 0.0055, delta=0.0055 * 0.05)
        self.assertLess(out["rate_bits_per_entry"], 4.30)

    def test_bench_reports_ratios(self):
        out = run_json("bench", "--mib", "4", "--reps", "1", "--threads", "1")
        for key in ("memcpy_gbps", "encode_gbps", "decode_gbps", "encode_vs_memcpy", "decode_vs_memcpy"):
            self.assertGreater(out[key], 0.0)

    def test_errors_are_clear_and_nonzero(self):
        x = np.ones((4, 8), np.float32)
        x[1, 3] = np.nan
        np.save(self.path("nan.npy"), x)
        proc = run("encode", self.path("nan.npy"), self.path("o.coset"), check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("input[11]", proc.stderr)
        self.assertFalse(os.path.exists(self.path("o.coset")))

        np.save(self.path("ok.npy"), np.ones((4, 8), np.float32))
        proc = run("encode", self.path("ok.npy"), self.path("o.coset"), "--q", "2", check=False)
        self.assertIn("q (=2)", proc.stderr)
        proc = run("encode", self.path("ok.npy"), self.path("o.coset"), "--bogus", "1", check=False)
        self.assertIn("unknown flag --bogus", proc.stderr)
        proc = run("decode", self.path("missing.coset"), self.path("y.npy"), check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("cannot open", proc.stderr)

        run("encode", self.path("ok.npy"), self.path("o.coset"))
        blob = open(self.path("o.coset"), "rb").read()
        open(self.path("cut.coset"), "wb").write(blob[: len(blob) // 2])
        proc = run("decode", self.path("cut.coset"), self.path("y.npy"), "--json", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(json.loads(proc.stdout)["code"], "DATA_LOSS")
        flipped = bytearray(blob)
        flipped[len(blob) // 2] ^= 0x10
        open(self.path("flip.coset"), "wb").write(bytes(flipped))
        self.assertIn("checksum", run("info", self.path("flip.coset"), check=False).stderr)

        np.save(self.path("int.npy"), np.arange(8, dtype=np.int32))
        self.assertIn("not supported", run("encode", self.path("int.npy"), self.path("o.coset"), check=False).stderr)

    def test_cuda_backend_runs_on_a_device_or_says_why_not(self):
        x = np.random.default_rng(3).standard_normal((8, 300)).astype(np.float32)
        np.save(self.path("x.npy"), x)
        run("encode", self.path("x.npy"), self.path("cpu.coset"))
        proc = run("--backend", "cuda", "encode", self.path("x.npy"), self.path("gpu.coset"), check=False)
        if proc.returncode == 0:  # a CUDA device: the CPU codec's bytes
            with open(self.path("cpu.coset"), "rb") as a, open(self.path("gpu.coset"), "rb") as b:
                self.assertEqual(a.read(), b.read())
            self.assertEqual(run_json("--backend", "cuda", "info")["backend"], "cuda")
        else:  # none here: exit 1 with the reason, and nothing written
            self.assertEqual(proc.returncode, 1)
            self.assertRegex(proc.stderr, "--backend cuda: no CUDA (driver|device)")
            self.assertFalse(os.path.exists(self.path("gpu.coset")))
        proc = run("--backend", "tpu", "info", check=False)
        self.assertIn("--backend must be cpu or cuda", proc.stderr)
        proc = run("--backend", "cuda", "--daemon", "unix:/nonexistent", "info", check=False)
        self.assertIn("drop --daemon", proc.stderr)

    def test_gemv_matches_decode_then_matmul(self):
        rng = np.random.default_rng(4)
        for lattice, q in (("D4", "4"), ("E8", "4"), ("A2", "3")):
            w = rng.standard_normal((37, 300)).astype(np.float32)
            np.save(self.path("w.npy"), w)
            run("encode", self.path("w.npy"), self.path("w.coset"), "--lattice", lattice, "--q", q)
            run("decode", self.path("w.coset"), self.path("wd.npy"))
            wd = np.load(self.path("wd.npy")).astype(np.float64)
            for x in (rng.standard_normal(300).astype(np.float32), rng.standard_normal((5, 300)).astype(np.float32)):
                np.save(self.path("x.npy"), x)
                out = run_json("gemv", self.path("w.coset"), self.path("x.npy"), self.path("y.npy"))
                y = np.load(self.path("y.npy"))
                want = x.astype(np.float64) @ wd.T
                self.assertEqual(y.shape, want.shape)
                self.assertLess(np.max(np.abs(y - want)) / np.max(np.abs(want)), 1e-5, (lattice, out["path"]))
        np.save(self.path("bad.npy"), np.ones(299, np.float32))
        self.assertIn("K = 300", run("gemv", self.path("w.coset"), self.path("bad.npy"), self.path("y.npy"), check=False).stderr)

    def test_dot_matches_decode_then_rowwise_dot(self):
        rng = np.random.default_rng(5)
        a, b = rng.standard_normal((2, 6, 129)).astype(np.float32)
        np.save(self.path("a.npy"), a)
        np.save(self.path("b.npy"), b)
        run("encode", self.path("a.npy"), self.path("a.coset"))
        run("encode", self.path("b.npy"), self.path("b.coset"), "--beta", "0.15")
        dots = np.array(run_json("dot", self.path("a.coset"), self.path("b.coset"))["dots"])
        run("decode", self.path("a.coset"), self.path("ad.npy"))
        run("decode", self.path("b.coset"), self.path("bd.npy"))
        want = np.sum(np.load(self.path("ad.npy")).astype(np.float64) * np.load(self.path("bd.npy")), axis=1)
        np.testing.assert_allclose(dots, want, rtol=1e-5)
        run("encode", self.path("a.npy"), self.path("e8.coset"), "--lattice", "E8")
        self.assertIn("over the budget", run("dot", self.path("e8.coset"), self.path("e8.coset"), check=False).stderr)

    def test_bench_gemv_reports_the_documented_keys(self):
        out = run_json("bench", "gemv", "--n", "256", "--k", "512", "--batch", "2", "--reps", "1", "--runs", "2",
                       "--layout", "compact-codes")
        for key in ("lut_ms", "fp32_ms", "decode_then_fp32_ms", "speedup_vs_fp32", "lut_read_gbps", "stream_read_gbps"):
            self.assertLessEqual(out[key]["min"], out[key]["median"])
            self.assertLessEqual(out[key]["median"], out[key]["max"])
        self.assertEqual(out["path"], "compact-codes")
        self.assertLess(out["resident_bits_per_entry"], 5.0)
        self.assertLess(out["rel_err"], 1e-5)
        lanes = run_json("bench", "gemv", "--n", "256", "--k", "512", "--reps", "1", "--runs", "1", "--layout",
                         "int8-lanes")
        self.assertEqual(lanes["path"], "int8-lanes")
        self.assertLess(lanes["rel_err"], 1e-5)
        default = run_json("bench", "gemv", "--n", "256", "--k", "512", "--reps", "1", "--runs", "1")
        self.assertIn(default["path"], ("compact-codes", "int8-lanes"))  # the CPU decides (AVX-512 VBMI or not)
        self.assertIn("--layout", run("bench", "gemv", "--layout", "fast", check=False).stderr)

    def test_daemon_mode_matches_in_process(self):
        cosetd = os.path.join(os.path.dirname(COSETCTL), "..", "server", "cosetd")
        sock_dir = tempfile.mkdtemp(dir="/tmp")
        self.addCleanup(shutil.rmtree, sock_dir, True)
        ready = os.path.join(sock_dir, "ready")
        # Flags from a config file, plus one on the command line.
        with open(os.path.join(sock_dir, "cosetd.conf"), "w") as conf:
            conf.write(f"# test daemon\ngrpc = unix:{sock_dir}/d.sock\nmetrics = off\n")
        daemon = subprocess.Popen([cosetd, "--config", os.path.join(sock_dir, "cosetd.conf"), "--ready-file", ready],
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(400):
                if os.path.exists(ready):
                    break
                time.sleep(0.025)
            addr = f"unix:{sock_dir}/d.sock"
            self.assertTrue(run_json("--daemon", addr, "health")["serving"])
            info = run_json("--daemon", addr, "info")
            self.assertEqual(info["backends"], "cpu")
            self.assertTrue(info["backend_cpu"].startswith("serving: "))
            # Every backend of the daemon's build is listed; CUDA says why it does not serve.
            self.assertRegex(info["backend_cuda"], "^not serving: (no CUDA|device 0 .* not used)")
            x = np.random.default_rng(6).standard_normal((300, 1000)).astype(np.float64)
            np.save(self.path("x.npy"), x)
            run("encode", self.path("x.npy"), self.path("local.coset"))
            run("--daemon", addr, "encode", self.path("x.npy"), self.path("remote.coset"))
            self.assertEqual(open(self.path("local.coset"), "rb").read(), open(self.path("remote.coset"), "rb").read())
            run("decode", self.path("local.coset"), self.path("y1.npy"))
            run("--daemon", addr, "decode", self.path("remote.coset"), self.path("y2.npy"))
            np.testing.assert_array_equal(np.load(self.path("y1.npy")), np.load(self.path("y2.npy")))
            q = np.random.default_rng(7).standard_normal(1000).astype(np.float32)
            np.save(self.path("q.npy"), q)
            run("gemv", self.path("local.coset"), self.path("q.npy"), self.path("g1.npy"))
            run("--daemon", addr, "gemv", self.path("remote.coset"), self.path("q.npy"), self.path("g2.npy"))
            np.testing.assert_array_equal(np.load(self.path("g1.npy")), np.load(self.path("g2.npy")))
            local = run_json("eval", "--samples", "65536", "--data-seed", "3")
            remote = run_json("--daemon", addr, "eval", "--samples", "65536", "--data-seed", "3")
            self.assertEqual(local["mse"], remote["mse"])
            self.assertEqual(local["stored_bits_per_entry"], remote["stored_bits_per_entry"])
            bench = run_json("--daemon", addr, "bench", "--mib", "4", "--reps", "1")
            self.assertGreater(bench["daemon_encode_gbps"], 0)
            self.assertGreater(bench["daemon_decode_gbps"], 0)
        finally:
            daemon.terminate()
            self.assertEqual(daemon.wait(timeout=30), 0)
        proc = run("--daemon", "unix:/nonexistent/d.sock", "health", check=False)
        self.assertNotEqual(proc.returncode, 0)

    def test_help_for_every_command(self):
        for cmd in ("encode", "decode", "info", "eval", "bench", "gemv", "dot"):
            self.assertIn("usage", run(cmd, "--help").stdout)
        self.assertEqual(run(check=False).returncode, 2)


if __name__ == "__main__":
    # pytest writes one JUnit entry per test case where Bazel asks for it (scripts/test.sh counts them).
    import sys
    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
