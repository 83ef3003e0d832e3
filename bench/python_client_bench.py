"""64 MiB float32 encodes through cosetd from Python (coset_client, shared memory) beside the C++
client (cosetctl bench --daemon, also shared memory) and a memcpy, all in the same run against
the same daemon. Each run is a fresh client taking the best of --reps encodes; --runs runs give
min / median / max. Writes JSON with --out.

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
    runs = {"memcpy": [], "python_shm_copy_in": [], "python_shm_zero_copy": [], "python_inline": [], "cxx_shm": []}
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
            with coset_client.Client(daemon.address, shm_threshold_bytes=0) as c:
                runs["python_inline"].append(gbps(best_seconds(args.reps, lambda: c.encode(x))))
            bench = subprocess.run([binary("client", "cosetctl"), "--daemon", daemon.address, "bench", "--mib",
                                    str(args.mib), "--reps", str(args.reps), "--threads", "1", "--json"],
                                   check=True, capture_output=True, text=True)
            runs["cxx_shm"].append(json.loads(bench.stdout)["daemon_encode_gbps"])
    results["encode_gbps"] = {k: summary(v) for k, v in runs.items()}
    results["python_shm_copy_in_vs_cxx"] = summary([p / c for p, c in zip(runs["python_shm_copy_in"], runs["cxx_shm"])])
    results["python_shm_zero_copy_vs_cxx"] = summary(
        [p / c for p, c in zip(runs["python_shm_zero_copy"], runs["cxx_shm"])])
    results["python_shm_copy_in_vs_memcpy"] = summary([p / m for p, m in zip(runs["python_shm_copy_in"], runs["memcpy"])])
    print(f"{args.mib} MiB float32 encode through cosetd (D4 q=4 M=2, daemon threads {args.daemon_threads}), "
          f"{args.runs} runs, best of {args.reps} each, GB/s min / median / max:")
    for k, v in results["encode_gbps"].items():
        print(f"  {k:22s} {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f}")
    for k in ("python_shm_copy_in_vs_cxx", "python_shm_zero_copy_vs_cxx", "python_shm_copy_in_vs_memcpy"):
        v = results[k]
        print(f"  {k:30s} {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
