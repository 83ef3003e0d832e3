"""Multi-process DDP with gloo on 127.0.0.1: every hook mode keeps all ranks' parameters identical
after every step, and allreduce_codes equals the exact sum of the ranks' quantized gradients."""
import os
import sys

import pytest
import torch
import torch.distributed as dist

import coset_torch
from coset_torch import ddp
import ddp_harness


def train_worker(rank, world, rendezvous, mode, result_queue):
    model, ddp_model = ddp_harness.start(rank, world, rendezvous)
    state = ddp.register(ddp_model, mode=mode)
    torch.manual_seed(100 + rank)  # different data per rank
    identical = ddp_harness.train_and_compare(model, ddp_model, rank, world, steps=4, batch=32)
    result_queue.put((rank, identical, state.stats()))
    del ddp_model  # before the process group: see coset_torch.ddp, "Shutting down"
    dist.destroy_process_group()


def warmup_worker(rank, world, rendezvous, result_queue):
    """Two fp32 warm-up steps, then compressed ones: the bytes this rank accounted per step."""
    model, ddp_model = ddp_harness.start(rank, world, rendezvous)
    state = ddp.register(ddp_model, mode="allgather", warmup_steps=2)
    torch.manual_seed(100 + rank)
    totals = []  # cumulative (gradient bytes, fp32 bytes) after each step

    def record(step):
        s = state.stats()
        totals.append((s["grad_bytes_per_rank_per_step"] * s["steps"], s["fp32_bytes_per_rank_per_step"] * s["steps"]))

    identical = ddp_harness.train_and_compare(model, ddp_model, rank, world, steps=4, batch=32, on_step=record)
    per_step = [(g - pg, f - pf) for (g, f), (pg, pf) in zip(totals, [(0.0, 0.0)] + totals[:-1])]
    result_queue.put((rank, identical, per_step))
    del ddp_model  # before the process group: see coset_torch.ddp, "Shutting down"
    dist.destroy_process_group()


def codes_worker(rank, world, rendezvous, result_queue):
    ddp_harness.init(rank, world, rendezvous)
    torch.manual_seed(7 + rank)
    grad = torch.randn(5000) * (1 + rank)
    state = ddp.State(mode="allreduce_codes", error_feedback=False)
    average = ddp.allreduce_codes(state, grad.clone()).wait()
    # The exact sum of every rank's quantized gradient, at the shared block scales and step.
    per_entry = ddp.shared_block_scales(grad, None).repeat_interleave(256)[:grad.numel()]
    beta = ddp.shared_beta(state)
    mine = coset_torch.decode(torch.ops.coset.encode(grad / per_entry,
                                                     coset_torch.Config(beta=beta, scale="none").text()))
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    exact = torch.stack(every).sum(0)
    got = average * world / per_entry
    # Exact in the lattice: the decoded sum is step * (sum of integer points), rounded once; the
    # reference adds W rounded decodes. A chunk that overloaded would be off by ~q^M steps.
    tolerance = 1e-3 * beta
    chunk_equal = ((got - exact).abs().view(-1, 4) <= tolerance).all(1)
    result_queue.put((rank, float(chunk_equal.float().mean()), float((got - exact).abs().max() / beta)))
    dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("mode", ["reference", "allgather", "allreduce_codes"])
def test_all_ranks_hold_identical_parameters(mode, world):
    results = ddp_harness.run(train_worker, world, mode)
    assert all(identical for _, identical, _ in results)
    stats = results[0][2]
    assert stats["steps"] == 4
    assert 0.0 <= stats["overload_rate"] < 0.6, stats
    if mode == "allreduce_codes":
        assert stats["overload_rate"] == 0.0, stats  # the shared step never overloads a rank's chunk
    if mode != "reference":
        ratio = stats["fp32_bytes_per_rank_per_step"] / stats["grad_bytes_per_rank_per_step"]
        assert ratio > (3.0 if mode == "allgather" and world == 4 else 4.0), (mode, world, stats)


def test_warmup_steps_use_the_fp32_allreduce_then_compress():
    for rank, identical, per_step in ddp_harness.run(warmup_worker, 2):
        assert identical
        assert [g == f for g, f in per_step] == [True, True, False, False], per_step
        assert all(g * 4 < f for g, f in per_step[2:]), per_step


@pytest.mark.parametrize("world", [2, 4])
def test_allreduce_codes_is_the_exact_sum_of_quantized_gradients(world):
    for rank, fraction_exact, max_error in ddp_harness.run(codes_worker, world):
        # The shared step leaves room for the sum of W ranks: every chunk is exact.
        assert fraction_exact == 1.0, (rank, fraction_exact, max_error)


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    # Extra arguments (e.g. -k) select the cases: Bazel runs each mode as its own target.
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + sys.argv[1:] +
                         ([f"--junitxml={xml}"] if xml else [])))
