"""Fidelity of coset's DDP modes against the number of ranks W: the relative error of the averaged
gradient, ||average - exact average|| / ||exact average||, without error feedback, and the bytes
each rank sends per gradient entry.

Each of W gloo processes (127.0.0.1, file rendezvous) holds a correlated N(0, 1) gradient of 2^18
entries: g_r = sqrt(rho) c + sqrt(1 - rho) e_r, c shared, e_r its own (rho = 0.5 by default).

    bazel run //bench:ddp_fidelity -- --worlds 1,2,4,8 --json /tmp/fidelity.json
"""
import argparse
import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from coset_torch import ddp


def worker(rank, world, rendezvous, args, queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    common = torch.randn(args.entries, generator=torch.Generator().manual_seed(args.seed))
    own = torch.randn(args.entries, generator=torch.Generator().manual_seed(args.seed + 1 + rank))
    grad = args.rho ** 0.5 * common + (1 - args.rho) ** 0.5 * own
    exact = grad.clone()
    dist.all_reduce(exact)
    exact /= world
    out = {}
    for mode in args.modes:
        state = ddp.State(mode=mode, error_feedback=False, bound=args.bound)
        fut, wire_bytes = ddp.average(state, grad.clone())
        got = fut.wait()
        out[mode] = {"relative_error": float((got - exact).norm() / exact.norm()),
                     "bits_per_entry_per_rank": 8 * wire_bytes / args.entries}
    if rank == 0:
        queue.put(out)
    dist.barrier()
    dist.destroy_process_group()


def run(world, args):
    with tempfile.TemporaryDirectory() as d:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(r, world, os.path.join(d, "rendezvous"), args, queue))
                 for r in range(world)]
        for p in procs:
            p.start()
        try:
            result = queue.get(timeout=600)
        finally:
            for p in procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.kill()
        return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worlds", default="1,2,4,8")
    p.add_argument("--modes", default="allreduce_codes,allgather,reduce_scatter")
    p.add_argument("--entries", type=int, default=1 << 18)
    p.add_argument("--rho", type=float, default=0.5, help="correlation of the ranks' gradients")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bound", type=int, default=0, help="allreduce_codes' bound (0: the code region's span)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    args.modes = args.modes.split(",")
    worlds = [int(w) for w in args.worlds.split(",")]
    results = {w: run(w, args) for w in worlds}
    print("relative error of the averaged gradient (bits per entry each rank sends)")
    print("| mode | " + " | ".join(f"W = {w}" for w in worlds) + " |")
    print("|---|" + "---|" * len(worlds))
    for mode in args.modes:
        cells = [f"{results[w][mode]['relative_error']:.4f} ({results[w][mode]['bits_per_entry_per_rank']:.2f})"
                 for w in worlds]
        print(f"| {mode} | " + " | ".join(cells) + " |")
    if args.json:
        path = args.json if os.path.isabs(args.json) else os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""),
                                                                         args.json)
        with open(path, "w") as f:
            json.dump({"entries": args.entries, "rho": args.rho, "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
