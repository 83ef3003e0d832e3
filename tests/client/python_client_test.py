"""The Python client (client/python/coset_client) against a real cosetd: every call, the
shared-memory path (memfd + SCM_RIGHTS from Python), bit-identical results with the C++ client
(cosetctl through the daemon, and in-process), and clear errors that leave the daemon serving."""

import os
import subprocess
import tempfile
import unittest

import grpc
import numpy as np

import coset_client
from cosetd_process import Cosetd, binary

COSETCTL = binary("client", "cosetctl")


def cosetctl(*args):
    return subprocess.run([COSETCTL, *args], check=True, capture_output=True, text=True)


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Cosetd(metrics=False)
        cls.client = coset_client.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.daemon.stop() == 0

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def cxx_encode(self, x, *flags):
        """The blob the C++ client makes of x through this daemon (cosetctl --daemon encode)."""
        np.save(self.path("x.npy"), x)
        cosetctl("--daemon", self.daemon.address, "encode", self.path("x.npy"), self.path("x.coset"), *flags)
        return open(self.path("x.coset"), "rb").read()

    def test_the_expected_build_is_imported_with_generated_stubs(self):
        # Bazel's py_library here; scripts/test.sh's pip pass runs this file against
        # `pip install ./client/python` and names its root.
        root = os.environ.get("COSET_EXPECT_PACKAGE_ROOT", "")
        self.assertTrue(coset_client.__file__.startswith(root), coset_client.__file__)
        stubs = os.path.join(os.path.dirname(os.path.realpath(coset_client.client.pb.__file__)))
        self.assertTrue(os.path.exists(os.path.join(stubs, "coset_pb2_grpc.py")), stubs)

    def test_health_and_server_info(self):
        self.assertTrue(self.client.health())
        self.assertTrue(self.client.health("coset.v1.Coset"))
        self.assertFalse(self.client.health("no.such.Service"))
        self.assertFalse(self.client.health("x" * 300))  # a name longer than one varint byte
        info = self.client.server_info()
        self.assertEqual(list(info.backends), ["cpu"])
        self.assertGreater(info.limits.memory_budget_bytes, 0)

    def test_inline_encode_is_bit_identical_with_the_cxx_client(self):
        x = np.random.default_rng(1).standard_normal((37, 200)).astype(np.float32)  # under 1 MiB: inline
        blob, stats = self.client.encode(x)
        self.assertFalse(self.client.used_shared_memory)
        self.assertEqual(blob, self.cxx_encode(x))
        self.assertEqual(stats.chunks, 37 * 50)
        self.assertGreater(stats.stored_bits_per_entry, 4.0)
        # And decodes to what the C++ client decodes.
        cosetctl("--daemon", self.daemon.address, "decode", self.path("x.coset"), self.path("y.npy"))
        np.testing.assert_array_equal(self.client.decode(blob), np.load(self.path("y.npy")))

    def test_shared_memory_encode_and_decode_are_bit_identical(self):
        x = np.random.default_rng(2).standard_normal((512, 1024)).astype(np.float32)  # 2 MiB: shared memory
        config = {"lattice": "E8", "q": 4, "M": 2, "scale": "absmax"}
        blob, _ = self.client.encode(x, config)
        self.assertTrue(self.client.used_shared_memory)
        self.assertEqual(blob, self.cxx_encode(x, "--lattice", "E8", "--scale", "absmax"))
        inline = coset_client.Client(self.daemon.address, shm_threshold_bytes=0)
        self.addCleanup(inline.close)
        self.assertEqual(inline.encode(x, config)[0], blob)
        y = self.client.decode(blob)
        self.assertTrue(self.client.used_shared_memory)
        np.testing.assert_array_equal(y, inline.decode(blob))
        self.assertFalse(inline.used_shared_memory)
        # Zero copy: an array made inside the region is sent by reference.
        z = self.client.shared_array(x.shape)
        z[:] = x
        self.assertEqual(self.client.encode(z, config)[0], blob)
        self.assertTrue(self.client.used_shared_memory)
        # Other large calls (the blob too) go through the region behind it and leave it as it was.
        other = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
        other_blob, _ = self.client.encode(other, config)
        self.assertTrue(self.client.used_shared_memory)
        self.assertEqual(other_blob, inline.encode(other, config)[0])
        np.testing.assert_array_equal(self.client.decode(other_blob), inline.decode(other_blob))
        self.assertTrue(self.client.used_shared_memory)
        np.testing.assert_array_equal(z, x)
        self.assertEqual(self.client.encode(z, config)[0], blob)
        self.assertTrue(self.client.used_shared_memory)

    def test_float16_travels_as_is_and_comes_back_as_float16(self):
        x = np.random.default_rng(8).standard_normal((64, 256)).astype(np.float16)  # 32 KiB: inline
        blob, _ = self.client.encode(x)
        self.assertEqual(blob, self.cxx_encode(x))  # cosetctl reads the float16 .npy in-process
        wide, _ = self.client.encode(x.astype(np.float32))
        np.testing.assert_array_equal(self.client.decode(blob, dtype=np.float32), self.client.decode(wide))
        y = self.client.decode(blob)
        self.assertEqual(y.dtype, np.float16)
        np.testing.assert_array_equal(y, self.client.decode(wide).astype(np.float16))  # nearest, ties to even
        q = self.client.quantize(x)
        self.assertEqual(q.dtype, np.float16)
        np.testing.assert_array_equal(q, y)
        # Through shared memory (4 MiB of float16 both ways), the same blob and values.
        big = np.random.default_rng(9).standard_normal((512, 4096)).astype(np.float16)
        shm_blob, _ = self.client.encode(big)
        self.assertTrue(self.client.used_shared_memory)
        inline = coset_client.Client(self.daemon.address, shm_threshold_bytes=0)
        self.addCleanup(inline.close)
        self.assertEqual(inline.encode(big)[0], shm_blob)
        y = self.client.decode(shm_blob)
        self.assertTrue(self.client.used_shared_memory)
        self.assertEqual(y.dtype, np.float16)
        np.testing.assert_array_equal(y, inline.decode(shm_blob))
        with self.assertRaises(TypeError):
            self.client.decode(blob, dtype=np.int16)

    def test_float64_is_encoded_as_float32(self):
        x = np.random.default_rng(3).standard_normal((8, 64))
        self.assertEqual(self.client.encode(x)[0], self.client.encode(x.astype(np.float32))[0])

    def test_quantize_equals_decode_of_encode(self):
        x = np.random.default_rng(4).standard_normal((16, 256)).astype(np.float32)
        np.testing.assert_array_equal(self.client.quantize(x), self.client.decode(self.client.encode(x)[0]))

    def test_registered_configs_encode_like_inline_ones(self):
        x = np.random.default_rng(5).standard_normal((16, 256)).astype(np.float32)
        config = {"lattice": "D4", "q": 4, "M": 2, "t_max": 7, "on_cap": "zero"}
        config_id = self.client.register_config(config)
        self.assertEqual(self.client.encode(x, config_id)[0], self.client.encode(x, config)[0])

    def test_resident_tensors_and_inner_products(self):
        w = np.random.default_rng(6).standard_normal((64, 256)).astype(np.float32)
        q = np.random.default_rng(7).standard_normal((3, 256)).astype(np.float32)
        blob, _ = self.client.encode(w)
        info = self.client.put_tensor("py-w", blob)
        self.assertEqual((info.shape, info.lattice, info.q, info.M), ((64, 256), "D4", 4, 2))
        self.assertIn("py-w", [t.name for t in self.client.list_tensors()])
        self.assertEqual(self.client.get_tensor("py-w"), blob)
        decoded = self.client.decode("py-w")
        np.testing.assert_allclose(self.client.inner_product("py-w", q), q @ decoded.T, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(self.client.inner_product(blob, q[0]), decoded @ q[0], rtol=1e-5, atol=1e-4)
        self.client.put_tensor("py-w2", x=w, config={"scale": "absmax"}, overwrite=True)
        self.client.delete_tensor("py-w")
        self.client.delete_tensor("py-w2")
        self.assertNotIn("py-w", [t.name for t in self.client.list_tensors()])

    def test_errors_are_clear_and_leave_the_daemon_serving(self):
        x = np.ones((4, 8), np.float32)
        cases = [
            (lambda: self.client.encode(x, {"lattice": "Q9"}), "INVALID_ARGUMENT", "lattice"),
            (lambda: self.client.encode(np.full((4, 8), np.nan, np.float32)), "INVALID_ARGUMENT", "nan"),
            (lambda: self.client.decode(b"CSET" + b"\0" * 60), None, ""),
            (lambda: self.client.get_tensor("no-such-tensor"), "NOT_FOUND", "no-such-tensor"),
            (lambda: self.client.encode(x, "no-such-config-id"), "NOT_FOUND", "no-such-config-id"),
        ]
        for call, code, words in cases:
            with self.assertRaises(coset_client.CosetError) as caught:
                call()
            if code is not None:
                self.assertEqual(caught.exception.code, code, caught.exception)
            self.assertIn(words, str(caught.exception).lower() if words.islower() else str(caught.exception))
        with self.assertRaises(TypeError):
            self.client.encode(np.ones((4, 8), np.int32))
        with self.assertRaises(ValueError):
            coset_client.codec_config({"lattic": "D4"})
        self.assertTrue(self.client.health())

    def test_tls_over_tcp(self):
        # A CA and the daemon's certificate for 127.0.0.1, made with openssl for the test.
        d = self.tmp.name
        with open(self.path("san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        subprocess.run(f"set -e; cd {d}; {key} -x509 -keyout ca.key -out ca.pem -days 2 -subj /CN=ca; "
                       f"{key} -keyout server.key -out server.csr -subj /CN=cosetd; openssl x509 -req -in server.csr "
                       "-CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext",
                       shell=True, check=True, capture_output=True)
        with Cosetd("--grpc", "127.0.0.1:0", "--tls-cert", self.path("server.pem"), "--tls-key",
                    self.path("server.key"), metrics=False) as tls:
            tcp = next(a for a in tls.grpc if not a.startswith("unix:"))
            ca = open(self.path("ca.pem"), "rb").read()
            x = np.random.default_rng(9).standard_normal((16, 256)).astype(np.float32)
            with coset_client.Client(tcp, credentials=grpc.ssl_channel_credentials(ca)) as c:
                self.assertTrue(c.health())
                self.assertEqual(c.encode(x)[0], self.client.encode(x)[0])
                self.assertFalse(c.used_shared_memory)  # TCP: inline only
            with coset_client.Client(tcp, timeout=5) as plaintext:  # no TLS: refused by the handshake
                with self.assertRaises(coset_client.CosetError) as refused:
                    plaintext.encode(x)
                self.assertEqual(refused.exception.code, "UNAVAILABLE")

    def test_a_refused_region_falls_back_to_inline_messages(self):
        # A daemon whose shared-memory budget (1 MiB, its minimum) cannot hold the region.
        with Cosetd("--shm-budget", str(1 << 20), metrics=False) as small:
            with coset_client.Client(small.address) as c:
                x = np.random.default_rng(8).standard_normal((512, 1024)).astype(np.float32)
                blob, _ = c.encode(x)
                self.assertFalse(c.used_shared_memory)
                self.assertEqual(blob, self.client.encode(x)[0])
                with self.assertRaises(coset_client.ShmError) as refused:
                    coset_client.SharedRegion(small.address[len("unix:"):] + ".shm", 2 << 20)
                self.assertEqual(refused.exception.code, 8)  # RESOURCE_EXHAUSTED


if __name__ == "__main__":
    import sys

    import pytest
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
