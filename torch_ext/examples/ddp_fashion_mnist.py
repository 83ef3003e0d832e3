"""Data-parallel training on Fashion-MNIST with gloo on localhost processes, comparing gradient
communication hooks in the same run: none (fp32 all-reduce), PyTorch's fp16 and PowerSGD hooks,
and coset's hook (mode reference | allgather | allreduce_codes).

    bazel run //torch_ext/examples:ddp_fashion_mnist -- --world-size 4 --hook coset --mode allreduce_codes --json

grad_bytes_per_rank_per_step is measured on the wire: the loopback interface's transmitted bytes
(/proc/net/dev) over the training loop, divided by ranks and steps (it includes the few bytes of
non-gradient collectives). fp32_bytes_per_rank_per_step is the ring all-reduce of the gradients.
"""
import argparse
import atexit
import json
import os
import shutil
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

import coset_torch
from coset_torch import ddp as coset_ddp
import fashion_mnist


def loopback_tx_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith("lo:"):
                return int(line.split(":")[1].split()[8])
    return 0


def worker(rank, args, rendezvous, queue):
    torch.set_num_threads(1)
    # Rendezvous through a file: no TCP port to race for with other jobs on the machine.
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=args.world_size)
    train_x, train_y = fashion_mnist.load("train", args.limit)
    test_x, test_y = fashion_mnist.load("t10k", args.limit)
    torch.manual_seed(args.seed)
    model = fashion_mnist.mlp()
    ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    state = None
    if args.hook == "fp16":
        ddp_model.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif args.hook == "powersgd":
        psgd = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=2, start_powerSGD_iter=10)
        ddp_model.register_comm_hook(psgd, powerSGD_hook.powerSGD_hook)
    elif args.hook == "coset":
        config = None if args.mode == "allreduce_codes" else coset_torch.Config(q=args.q, M=args.M)
        state = coset_ddp.register(ddp_model, mode=args.mode, config=config, warmup_steps=args.warmup)
    opt = torch.optim.Adam(ddp_model.parameters(), lr=1e-3)
    # Each rank takes its own shard of every epoch's shuffled order.
    generator = torch.Generator().manual_seed(args.seed)
    steps, loss = 0, None
    dist.barrier()
    tx_before, start = loopback_tx_bytes(), time.time()
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x), generator=generator)[rank::args.world_size]
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(ddp_model(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
            steps += 1
    dist.barrier()
    wall, tx_after = time.time() - start, loopback_tx_bytes()
    n_params = sum(p.numel() for p in model.parameters())
    result = {
        "hook": args.hook, "mode": args.mode if args.hook == "coset" else None, "world_size": args.world_size,
        "epochs": args.epochs, "steps": steps,
        "test_accuracy": fashion_mnist.accuracy(model, test_x, test_y),
        "final_loss": float(loss),
        "grad_bytes_per_rank_per_step": (tx_after - tx_before) / args.world_size / max(1, steps),
        "fp32_bytes_per_rank_per_step": 2 * (args.world_size - 1) / args.world_size * n_params * 4,
        "compress_seconds": state.stats()["compress_seconds"] if state else 0.0,
        "wall_seconds": wall,
    }
    if state:
        result["hook_accounted_bytes_per_rank_per_step"] = state.stats()["grad_bytes_per_rank_per_step"]
    if rank == 0:
        queue.put(result)
    del ddp_model  # before the process group: see coset_torch.ddp, "Shutting down"
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--world-size", type=int, default=4)
    p.add_argument("--hook", choices=["none", "fp16", "powersgd", "coset"], default="coset")
    p.add_argument("--mode", choices=["reference", "allgather", "allreduce_codes"], default="allreduce_codes")
    p.add_argument("--q", type=int, default=4)
    p.add_argument("--M", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
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
    result = queue.get(timeout=3600)
    for proc in procs:
        proc.join()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.hook}{'/' + args.mode if args.hook == 'coset' else ''}: test accuracy {result['test_accuracy']:.4f}, "
              f"{result['grad_bytes_per_rank_per_step']:.0f} B/rank/step on the wire vs fp32 "
              f"{result['fp32_bytes_per_rank_per_step']:.0f}, {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
