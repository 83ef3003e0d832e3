"""The DDP hook's daemon backend: bucket compression through a real cosetd, and a daemon killed
mid-training makes the ranks fall back to in-process compression without losing a step."""
import os
import signal
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import coset_torch
from coset_torch import ddp
import ddp_harness
from cosetd_process import Cosetd

STEPS = 10


def worker(rank, world, rendezvous, address, mode, progress, results):
    model, ddp_model = ddp_harness.start(rank, world, rendezvous)
    state = ddp.register(ddp_model, mode=mode, backend="daemon", daemon_address=address)
    torch.manual_seed(10 + rank)

    def report(step):
        if rank == 0:
            progress.put(step)
        time.sleep(0.2)  # leaves the test time to kill the daemon mid-training

    identical = ddp_harness.train_and_compare(model, ddp_model, rank, world, steps=STEPS, batch=16, on_step=report)
    results.put((rank, identical, state.stats()))
    del ddp_model  # before the process group: see coset_torch.ddp, "Shutting down"
    dist.destroy_process_group()


def test_daemon_encode_is_bit_exact_with_the_embedded_codec():
    with Cosetd(metrics=False) as daemon:
        address = daemon.address
        x = torch.randn(300, 77)
        config = coset_torch.Config()
        assert torch.equal(torch.ops.coset.daemon_encode(x, address, config.text()), coset_torch.encode(x, config))
        # The hook's bucket packets, shard by shard through the daemon, with error feedback.
        grad = torch.randn(100_000)
        text = ddp.default_config().text()
        r_daemon, r_embedded = torch.randn(grad.numel()) * 0.01, None
        r_embedded = r_daemon.clone()
        through = torch.ops.coset.daemon_bucket_encode(grad, r_daemon, address, text, 3)
        assert torch.equal(through, torch.ops.coset.bucket_encode(grad, r_embedded, text, 3))
        assert torch.equal(r_daemon, r_embedded)


@pytest.mark.parametrize("mode", ["allgather", "reduce_scatter"])
def test_a_daemon_killed_mid_training_falls_back_without_losing_a_step(mode):
    daemon = Cosetd(metrics=False)
    ctx = mp.get_context("spawn")
    progress, results = ctx.Queue(), ctx.Queue()
    rendezvous = ddp_harness.rendezvous_file()
    procs = [ctx.Process(target=worker, args=(rank, 2, rendezvous, daemon.address, mode, progress, results)) for rank in range(2)]
    for p in procs:
        p.start()
    try:
        while progress.get(timeout=120) < 3:
            pass
        daemon.process.send_signal(signal.SIGKILL)  # the daemon dies while the ranks keep training
        daemon.process.wait(timeout=30)
        out = sorted(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
        daemon.stop()  # kills it if the test failed first; removes its directory
    assert all(p.exitcode == 0 for p in procs)
    for rank, identical, stats in out:
        assert identical, rank
        assert stats["steps"] == STEPS, stats
        assert stats["daemon_encodes"] > 0, stats  # the first steps went through the daemon
        assert stats["fallbacks"] > 0, stats  # the later ones fell back


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
