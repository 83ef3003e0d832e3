"""Encode and decode speed against memcpy, per SIMD level, lattice and thread count: `cosetctl bench
--mib 64 --json` (each run a fresh process taking the best of --reps of memcpy, encode and decode
over the same 64 MiB of N(0,1) float32, memcpy split across the same threads) run --runs times;
min / median / max of every ratio. Levels the CPU lacks are skipped and named in the output.

    bazel run -c opt //bench:codec_speed -- --runs 3 --out /tmp/codec_speed.json
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

LEVELS = ["avx2", "avx512"]
FIELDS = ["memcpy_gbps", "encode_gbps", "decode_gbps", "encode_vs_memcpy", "decode_vs_memcpy"]


def cosetctl():
    """cosetctl from this py_binary's runfiles tree (bench/.. is its root), or bazel-bin by hand."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    for candidate in (os.path.join(root, "client", "cosetctl"), os.path.join(root, "bazel-bin", "client", "cosetctl")):
        if os.path.exists(candidate):
            return candidate
    sys.exit("cosetctl is not built: bazel run -c opt //bench:codec_speed")


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def bench_once(binary, level, lattice, threads, mib, reps):
    env = dict(os.environ, COSET_SIMD=level)
    out = subprocess.run([binary, "bench", "--lattice", lattice, "--mib", str(mib), "--reps", str(reps), "--threads",
                          str(threads), "--json"], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--lattices", default="D4,E8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out")
    args = parser.parse_args()
    binary = cosetctl()
    result = {"cpu": cpu_model(), "mib": args.mib, "runs": args.runs, "reps_per_run": args.reps, "configs": [],
              "skipped_levels": []}
    for level in LEVELS:
        for lattice in args.lattices.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                runs = [bench_once(binary, level, lattice, threads, args.mib, args.reps) for _ in range(args.runs)]
                if runs[0]["simd"] != level:  # COSET_SIMD only lowers: this CPU lacks the level
                    if level not in result["skipped_levels"]:
                        result["skipped_levels"].append(level)
                    continue
                entry = {"simd": level, "lattice": lattice, "q": runs[0]["q"], "M": runs[0]["M"], "threads": threads}
                for field in FIELDS:
                    values = sorted(r[field] for r in runs)
                    entry[field] = {"min": values[0], "median": statistics.median(values), "max": values[-1]}
                result["configs"].append(entry)
                print(f"{level:7s} {lattice} {threads} thread(s): encode {entry['encode_gbps']['median']:.2f} GB/s "
                      f"({entry['encode_vs_memcpy']['min']:.3f} / {entry['encode_vs_memcpy']['median']:.3f} / "
                      f"{entry['encode_vs_memcpy']['max']:.3f} x memcpy), decode {entry['decode_gbps']['median']:.2f} "
                      f"GB/s ({entry['decode_vs_memcpy']['min']:.3f} / {entry['decode_vs_memcpy']['median']:.3f} / "
                      f"{entry['decode_vs_memcpy']['max']:.3f}), memcpy {entry['memcpy_gbps']['median']:.2f} GB/s",
                      flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
