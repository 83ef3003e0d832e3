"""The DDP hook's own time per MB of gradient on one core: each mode's ops on one bucket, as one
rank of W runs them, without the collectives (the packets a rank would receive are stand-ins made
from its own bucket: same sizes, same work), with the buffers the hook reuses between steps.
Three runs; min / median / max, and a memcpy of the bucket measured in the same run as the
baseline.

    bazel run //bench:ddp_hook_cost -- --world 4 --megabytes 46
"""
import argparse
import statistics
import sys
import time

import torch

from coset_torch import ddp


def per_mode(x, world, config, bound):
    """Closures running one step's ops of each mode for one rank of `world` on the bucket x, with
    the buffers the hook keeps between steps (coset_torch.ddp.State.buffer) and the average written
    into the bucket, as the hook does. The packets a rank would receive are stand-ins made once
    from its own bucket (what a collective would have written into the same buffers)."""
    n = x.numel()
    residuals = {role: torch.zeros(n) for role in ("local", "shard")}
    _, whole_packet = torch.ops.coset.bucket_layout(n, 1, config)
    shard_len, shard_packet = torch.ops.coset.bucket_layout(n, world, config)
    shard_residual = torch.zeros(shard_len)
    words_len, _ = torch.ops.coset.exact_sum_layout(n, config, world, bound)
    packet = torch.ops.coset.bucket_encode(x, None, config, 1)
    packets = torch.ops.coset.bucket_encode(x, None, config, world)
    buf = {
        "packet": torch.empty(1, whole_packet, dtype=torch.uint8),
        "gathered": packet.expand(world, -1).contiguous(),
        "packets": torch.empty(world, shard_packet, dtype=torch.uint8),
        "received": packets[:1].expand(world, -1).contiguous(),  # W packets of one shard
        "shard_packet": torch.empty(1, shard_packet, dtype=torch.uint8),
        "shard_gathered": packets,
        "words": torch.empty(words_len, dtype=torch.int64),
    }
    coset = torch.ops.coset

    def allgather():
        coset.bucket_encode(x, residuals["local"], config, 1, buf["packet"])
        return coset.bucket_decode(buf["gathered"], config, n, 1, True, 1.0 / world, x)

    def reduce_scatter():  # as rank 0: its own shard is summed exactly, never encoded
        coset.bucket_encode(x, residuals["local"], config, world, buf["packets"], 0)
        coset.bucket_reduce_encode(buf["received"], shard_residual, config, n, world, 1.0 / world, buf["shard_packet"],
                                   x, 0)
        return coset.bucket_decode(buf["shard_gathered"], config, n, world, False, 1.0, x)

    def allreduce_codes():
        scales = coset.block_absmax(x, residuals["local"], config)
        words = coset.exact_sum_encode(x, residuals["local"], scales, config, world, bound, buf["words"])
        return coset.exact_sum_decode(words, scales, config, world, bound, n, x)

    return {"allgather": allgather, "reduce_scatter": reduce_scatter, "allreduce_codes": allreduce_codes}


def timed(fn, runs, setup=lambda: None):
    """Seconds of fn per run; setup (untimed) runs before each."""
    times = []
    for _ in range(runs):
        setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def first_op_after_idle(runs=40):
    """What a wait costs the op that follows it, whatever that op is: the median time of one small
    torch op (an in-place add of 16,384 floats) right after sleeping, or busy-waiting in Python, for
    each wait, beside the same op back to back. On a shared VM the caches (code and data alike)
    cool while a rank waits for a slow link."""
    a, b = torch.randn(16384), torch.randn(16384)

    def first_op(wait):
        t = []
        for _ in range(runs):
            wait()
            start = time.perf_counter()
            a.add_(b)
            t.append(time.perf_counter() - start)
        return 1e6 * statistics.median(t)

    def spin(seconds):
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            pass

    print(f"one add_ of 16,384 floats: {first_op(lambda: None):.1f} us back to back (median of {runs})")
    print("| wait before it | after sleep (us) | after Python busy-wait (us) |")
    print("|---|---|---|")
    for ms in (0.2, 1, 5, 20, 100):
        print(f"| {ms:g} ms | {first_op(lambda: time.sleep(ms / 1e3)):.1f} | {first_op(lambda: spin(ms / 1e3)):.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, default=4)
    p.add_argument("--megabytes", type=float, default=46.0, help="bucket size (the wide model's gradient: 46)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--idle-ms", type=float, default=0.0,
                   help="sleep before each timed step, as a rank waits for a slow link between steps")
    p.add_argument("--first-op-after-idle", action="store_true",
                   help="instead: what a wait costs the first torch op after it (first_op_after_idle)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.first_op_after_idle:
        return first_op_after_idle()
    n = int(args.megabytes * 1e6 / 4)
    gradient = torch.randn(n)
    x = gradient.clone()
    config = ddp.default_config().text()
    megabytes = n * 4 / 1e6
    copy = torch.empty_like(x)
    baseline = timed(lambda: copy.copy_(x), args.runs + 1)[1:]
    print(f"bucket {megabytes:.1f} MB, W = {args.world}, {args.threads} thread(s); ms per MB, min / median / max "
          f"of {args.runs} runs (after one warm-up), {args.idle_ms:g} ms idle before each; "
          f"memcpy {1e3 * min(baseline) / megabytes:.3f} ms/MB")
    print("| mode | ms/MB min | median | max | x memcpy (median) |")
    print("|---|---|---|---|---|")
    med_copy = statistics.median(baseline)
    # Each step starts from the same gradient (the modes write the average into the bucket, as
    # backward then overwrites it with the next gradient): the copy is not timed.
    def fresh():
        x.copy_(gradient)
        if args.idle_ms > 0:
            time.sleep(args.idle_ms / 1e3)

    for mode, fn in per_mode(x, args.world, config, 0).items():
        fresh()
        fn()  # warm-up: allocations, the codebook
        t = timed(fn, args.runs, fresh)
        print(f"| {mode} | {1e3 * min(t) / megabytes:.2f} | {1e3 * statistics.median(t) / megabytes:.2f} | "
              f"{1e3 * max(t) / megabytes:.2f} | {statistics.median(t) / med_copy:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
