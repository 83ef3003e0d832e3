"""Shared pieces of the multi-process DDP tests: rendezvous, one training loop that checks the
ranks' parameters after every step, and a launcher that never leaves peers blocked."""
import atexit
import os
import shutil
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rendezvous_file():
    """A path that does not exist yet, for torch.distributed's file:// rendezvous (no TCP port to
    race for with other jobs on the machine)."""
    d = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, d, True)  # the test process outlives its ranks
    return os.path.join(d, "rendezvous")


def init(rank, world, rendezvous):
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)


def start(rank, world, rendezvous):
    """Joins the group and wraps the same model on every rank: (model, ddp_model). DDP splits its
    gradients into three buckets from the second step on: DDP caps its first bucket at 1 MB
    whatever bucket_cap_mb says, so a smaller model would travel as one bucket."""
    init(rank, world, rendezvous)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(40, 64), torch.nn.ReLU(), torch.nn.Linear(64, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    return model, torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.01)


def train_and_compare(model, ddp_model, rank, world, steps, batch, on_step=None):
    """SGD steps on random data (different per rank); True when all ranks held identical
    parameters after every step. on_step(step) runs after each step's check."""
    opt = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    identical = True
    for step in range(steps):
        x, y = torch.randn(batch, 40), torch.randint(0, 10, (batch,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp_model(x), y).backward()
        opt.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        identical &= all(torch.equal(g, gathered[0]) for g in gathered)
        if on_step is not None:
            on_step(step)
    return identical


def run(target, world, *args):
    """Runs target(rank, world, rendezvous, *args, queue) in `world` processes; returns the sorted
    items they put on the queue (one each)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    rendezvous = rendezvous_file()
    procs = [ctx.Process(target=target, args=(rank, world, rendezvous, *args, queue)) for rank in range(world)]
    for p in procs:
        p.start()
    results = []
    try:
        for _ in procs:
            results.append(queue.get(timeout=60))
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():  # a peer died: do not leave the others blocked in a collective
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return sorted(results)
