"""Data-parallel training on Fashion-MNIST with gloo on localhost processes, with one gradient
communication hook: none (fp32 all-reduce), PyTorch's fp16 or PowerSGD hook, or coset's hook in any
mode. Same seeds, model initialization and data order for every hook.

    bazel run //torch_ext/examples:ddp_fashion_mnist -- --world-size 4 --hook coset --mode reduce_scatter --json

Prints one JSON line with: test accuracy after training and at every --eval-every steps against
training seconds (the curve bench/ddp_time_to_accuracy.py plots; evaluation time is not counted),
the median step time, and grad_bytes_per_rank_per_step measured on the wire: the loopback
interface's transmitted bytes (/proc/net/dev) over the training loop, divided by ranks and steps
(it includes the few bytes of non-gradient collectives). fp32_bytes_per_rank_per_step is the ring
all-reduce of the gradients.

Each rank runs on one thread (torch.set_num_threads(1)). Debian's torch multiplies matrices with
OpenBLAS, whose own thread pool ignores that setting: its idle workers spin (sched_yield) for a
while after every call, on the cores the other ranks and gloo's threads need (that slowed the hook's
decode in gloo's callback thread up to 5x in one call of ten). So OPENBLAS_NUM_THREADS is 1 unless
the environment sets it.
"""
import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

# Before torch loads OpenBLAS (see above); spawned ranks inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook  # noqa: E402

import coset_torch  # noqa: E402
from coset_torch import ddp as coset_ddp  # noqa: E402
import fashion_mnist  # noqa: E402


def loopback_tx_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith("lo:"):
                return int(line.split(":")[1].split()[8])
    return 0


def register_hook(args, ddp_model):
    if args.hook == "fp16":
        ddp_model.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif args.hook == "powersgd":
        psgd = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=args.powersgd_rank,
                                           start_powerSGD_iter=args.warmup + 2)
        ddp_model.register_comm_hook(psgd, powerSGD_hook.powerSGD_hook)
    elif args.hook == "coset":
        return coset_ddp.register(ddp_model, mode=args.mode, warmup_steps=args.warmup)
    return None


def worker(rank, args, rendezvous, queue):
    torch.set_num_threads(1)
    # Rendezvous through a file: no TCP port to race for with other jobs on the machine.
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=args.world_size)
    train_x, train_y = fashion_mnist.load("train", args.limit)
    test_x, test_y = fashion_mnist.load("t10k", args.limit)
    probe = slice(0, min(len(test_x), args.eval_images))
    torch.manual_seed(args.seed)
    model = fashion_mnist.MODELS[args.model]()
    ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    state = register_hook(args, ddp_model)
    opt = torch.optim.Adam(ddp_model.parameters(), lr=args.lr)
    # Each rank takes its own shard of every epoch's shuffled order.
    generator = torch.Generator().manual_seed(args.seed)
    steps, loss, train_seconds, step_seconds, curve, tx_bytes = 0, None, 0.0, [], [], 0
    dist.barrier()
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x), generator=generator)[rank::args.world_size]
        for i in range(0, len(order) - args.batch + 1, args.batch):
            if args.max_steps and steps >= args.max_steps:
                break
            idx = order[i:i + args.batch]
            tx, start = loopback_tx_bytes(), time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(ddp_model(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
            step_seconds.append(time.perf_counter() - start)
            train_seconds += step_seconds[-1]
            tx_bytes += loopback_tx_bytes() - tx
            steps += 1
            if args.eval_every and steps % args.eval_every == 0:
                # Rank 0 evaluates while the clock is stopped; the barrier keeps ranks in step.
                if rank == 0:
                    curve.append((train_seconds, steps, fashion_mnist.accuracy(model, test_x[probe], test_y[probe])))
                dist.barrier()
    dist.barrier()
    n_params = sum(p.numel() for p in model.parameters())
    result = {
        "hook": args.hook, "mode": args.mode if args.hook == "coset" else None, "model": args.model,
        "parameters": n_params, "world_size": args.world_size, "epochs": args.epochs, "steps": steps,
        "test_accuracy": fashion_mnist.accuracy(model, test_x, test_y),
        "final_loss": float(loss),
        # Counted around each step only, so evaluation traffic (barriers) is left out. Every rank
        # shares the loopback counters: the interface total over ranks.
        "grad_bytes_per_rank_per_step": tx_bytes / args.world_size / max(1, steps),
        "fp32_bytes_per_rank_per_step": 2 * (args.world_size - 1) / args.world_size * n_params * 4,
        "median_step_seconds": statistics.median(step_seconds) if step_seconds else 0.0,
        "train_seconds": train_seconds,
        "curve": [{"seconds": s, "step": k, "probe_accuracy": a} for s, k, a in curve],
        "probe_images": probe.stop,
    }
    if state:
        result["hook_stats"] = state.stats()
    if rank == 0:
        queue.put(result)
    del ddp_model  # before the process group: see coset_torch.ddp, "Shutting down"
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--world-size", type=int, default=4)
    p.add_argument("--hook", choices=["none", "fp16", "powersgd", "coset"], default="coset")
    p.add_argument("--mode", choices=coset_ddp.MODES, default="reduce_scatter")
    p.add_argument("--model", choices=sorted(fashion_mnist.MODELS), default="mlp")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: whole epochs)")
    p.add_argument("--batch", type=int, default=64, help="per rank")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=0, help="fp32 steps before compressing")
    p.add_argument("--powersgd-rank", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=0, help="probe test accuracy every N steps (0: never)")
    p.add_argument("--eval-images", type=int, default=2000, help="test images of each probe")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds before the run is abandoned")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rendezvous_dir = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, rendezvous_dir, True)  # removed when the launcher exits
    rendezvous = os.path.join(rendezvous_dir, "rendezvous")  # file:// rendezvous path
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(rank, args, rendezvous, queue)) for rank in range(args.world_size)]
    for proc in procs:
        proc.start()
    result, deadline = None, time.monotonic() + args.timeout
    try:
        # A rank that dies leaves the others blocked in a collective: stop waiting on them.
        while result is None and time.monotonic() < deadline:
            try:
                result = queue.get(timeout=1)
            except Exception:  # queue.Empty
                if any(p.exitcode not in (None, 0) for p in procs):
                    break
        for proc in procs:
            proc.join(timeout=60 if result is not None else 0)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    if result is None or any(p.exitcode != 0 for p in procs):
        sys.exit(f"ddp_fashion_mnist: a rank failed (exit codes {[p.exitcode for p in procs]})")
    if args.json:
        print(json.dumps(result))
    else:
        name = f"{args.hook}/{args.mode}" if args.hook == "coset" else args.hook
        print(f"{name}: test accuracy {result['test_accuracy']:.4f}, "
              f"{result['grad_bytes_per_rank_per_step']:.0f} B/rank/step on the wire vs fp32 "
              f"{result['fp32_bytes_per_rank_per_step']:.0f}, {result['train_seconds']:.1f} s training")


if __name__ == "__main__":
    main()
