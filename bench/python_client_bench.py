"""64 MiB float32 encodes through cosetd from Python (coset_client, shared memory) beside the C++
client (cosetctl bench --daemon, also shared memory) and a memcpy, all in the same run against
the same daemon; and the same tensor as float16 (half the bytes on the wire, widened in the
daemon), inline and through shared memory, and decodes of both blobs to their own dtypes. Each
run is a fresh client taking the best of --reps encodes; --runs runs give min / median / max.
Rates are of the float32 bytes (elements x 4), so float16 and float32 compare by time. Writes
JSON with --out.

    bazel run -c opt //bench:python_client_bench -- --runs 3 --out /tmp/py_client.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import coset_client
from cosetd_process import Cosetd, binary


def best_seconds(reps, fn):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def summary(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--daemon-threads", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    n = args.mib * (1 << 20) // 4
    x = np.random.default_rng(0).standard_normal((n // 4096, 4096)).astype(np.float32)
    gbps = lambda s: n * 4 / s / 1e9
    results = {"mib": args.mib, "daemon_threads": args.daemon_threads, "lattice": "D4", "q": 4, "M": 2}
    runs = {"memcpy": [], "python_shm_copy_in": [], "python_shm_zero_copy": [], "python_inline": [], "cxx_shm": [],
            "python_shm_float16": [], "python_inline_float16": [], "decode_shm": [], "decode_shm_float16": [],
            "decode_inline": [], "decode_inline_float16": []}
    x16 = x.astype(np.float16)
    with Cosetd("--threads", str(args.daemon_threads), metrics=False) as daemon:
        for _ in range(args.runs):
            dst = np.empty_like(x)
            runs["memcpy"].append(gbps(best_seconds(args.reps, lambda: np.copyto(dst, x))))
            with coset_client.Client(daemon.address) as c:
                runs["python_shm_copy_in"].append(gbps(best_seconds(args.reps, lambda: c.encode(x))))
                assert c.used_shared_memory
                z = c.shared_array(x.shape)
                z[:] = x
                runs["python_shm_zero_copy"].append(gbps(best_seconds(args.reps, lambda: c.encode(z))))
                runs["python_shm_float16"].append(gbps(best_seconds(args.reps, lambda: c.encode(x16))))
                assert c.used_shared_memory
                blob, blob16 = c.encode(x)[0], c.encode(x16)[0]
                runs["decode_shm"].append(gbps(best_seconds(args.reps, lambda: c.decode(blob))))
                runs["decode_shm_float16"].append(gbps(best_seconds(args.reps, lambda: c.decode(blob16))))
                assert c.used_shared_memory and c.decode(blob16).dtype == np.float16
            with coset_client.Client(daemon.address, shm_threshold_bytes=0) as c:
                runs["python_inline"].append(gbps(best_seconds(args.reps, lambda: c.encode(x))))
                runs["python_inline_float16"].append(gbps(best_seconds(args.reps, lambda: c.encode(x16))))
                runs["decode_inline"].append(gbps(best_seconds(args.reps, lambda: c.decode(blob))))
                runs["decode_inline_float16"].append(gbps(best_seconds(args.reps, lambda: c.decode(blob16))))
            bench = subprocess.run([binary("client", "cosetctl"), "--daemon", daemon.address, "bench", "--mib",
                                    str(args.mib), "--reps", str(args.reps), "--threads", "1", "--json"],
                                   check=True, capture_output=True, text=True)
            runs["cxx_shm"].append(json.loads(bench.stdout)["daemon_encode_gbps"])
    results["encode_gbps"] = {k: summary(v) for k, v in runs.items()}
    results["python_shm_copy_in_vs_cxx"] = summary([p / c for p, c in zip(runs["python_shm_copy_in"], runs["cxx_shm"])])
    results["python_shm_zero_copy_vs_cxx"] = summary(
        [p / c for p, c in zip(runs["python_shm_zero_copy"], runs["cxx_shm"])])
    results["python_shm_copy_in_vs_memcpy"] = summary([p / m for p, m in zip(runs["python_shm_copy_in"], runs["memcpy"])])
    results["float16_vs_float32_inline"] = summary(
        [h / f for h, f in zip(runs["python_inline_float16"], runs["python_inline"])])
    results["float16_vs_float32_shm"] = summary(
        [h / f for h, f in zip(runs["python_shm_float16"], runs["python_shm_copy_in"])])
    results["float16_vs_float32_decode_inline"] = summary(
        [h / f for h, f in zip(runs["decode_inline_float16"], runs["decode_inline"])])
    results["float16_vs_float32_decode_shm"] = summary(
        [h / f for h, f in zip(runs["decode_shm_float16"], runs["decode_shm"])])
    print(f"{args.mib} MiB float32 encode through cosetd (D4 q=4 M=2, daemon threads {args.daemon_threads}), "
          f"{args.runs} runs, best of {args.reps} each, GB/s min / median / max:")
    for k, v in results["encode_gbps"].items():
        print(f"  {k:22s} {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f}")
    for k in ("python_shm_copy_in_vs_cxx", "python_shm_zero_copy_vs_cxx", "python_shm_copy_in_vs_memcpy",
              "float16_vs_float32_inline", "float16_vs_float32_shm", "float16_vs_float32_decode_inline",
              "float16_vs_float32_decode_shm"):
        v = results[k]
        print(f"  {k:30s} {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
