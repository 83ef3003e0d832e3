"""Multi-process DDP with gloo on 127.0.0.1: every hook mode keeps all ranks' parameters identical
after every step, and allreduce_codes equals the exact sum of the ranks' quantized gradients, each
quantized at one rank's step."""
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
    residuals = {}
    average = ddp.average(state, grad, residuals)[0].wait()
    residual = residuals["local"]
    # What this rank contributed: its gradient minus the quantization error the op reported.
    mine = grad - residual
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    exact = torch.stack(every).mean(0)
    # The shared scales are the ranks' largest block absmax; one rank's step is scale / bound.
    scales = torch.ops.coset.block_absmax(grad, None, state.config_text)
    dist.all_reduce(scales, op=dist.ReduceOp.MAX)
    step = scales.repeat_interleave(256)[:grad.numel()] / 15
    result_queue.put((rank, float(((average - exact).abs() / step).max()), float((residual.abs() / step).max())))
    dist.destroy_process_group()


class _Bucket:
    """The part of DDP's GradBucket the hook reads: DDP on CPU cannot make float16 buckets here
    (torch 1.13 has no CPU float16 matmul, and gloo no bfloat16), but NCCL users' buckets are
    16-bit."""

    def __init__(self, buffer, params):
        self._buffer, self._params = buffer, params

    def buffer(self):
        return self._buffer

    def parameters(self):
        return self._params

    def is_last(self):
        return True


def half_bucket_worker(rank, world, rendezvous, mode, result_queue):
    ddp_harness.init(rank, world, rendezvous)
    torch.manual_seed(11 + rank)
    grads = [torch.randn(5000).to(torch.float16) for _ in range(3)]  # three steps of one bucket
    params = [torch.empty(5000)]
    states = {dtype: ddp.State(mode=mode) for dtype in (torch.float16, torch.float32)}
    same = True
    for g in grads:  # error feedback carries over from step to step in both
        half = ddp.hook(states[torch.float16], _Bucket(g.clone(), params)).wait()
        wide = ddp.hook(states[torch.float32], _Bucket(g.float(), params)).wait()
        same &= half.dtype == torch.float16 and torch.equal(half, wide.to(torch.float16))
    result_queue.put((rank, same))
    dist.destroy_process_group()


@pytest.mark.parametrize("mode", ddp.MODES)
def test_float16_buckets_average_like_their_float32_values(mode):
    # The hook widens a 16-bit bucket exactly, runs the mode on float32 and returns the average in
    # the bucket's dtype: the float32 run's result, rounded.
    assert all(same for _, same in ddp_harness.run(half_bucket_worker, 2, mode))


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("mode", ddp.MODES)
def test_all_ranks_hold_identical_parameters(mode, world):
    results = ddp_harness.run(train_worker, world, mode)
    assert all(identical for _, identical, _ in results)
    stats = results[0][2]
    assert stats["steps"] == 4
    assert stats["hook_seconds"] > 0.0, stats
    # CPU time of the threads that ran the ops: never more than their wall-clock time, up to the
    # two clocks' disagreement (thread CPU time and perf_counter, a few ms in all here: CPU / wall
    # read up to 1.004 and 1.012 on this VM); summing more than the timed threads would be far over.
    assert 0.0 < stats["hook_cpu_ms_per_mb"] <= stats["hook_ms_per_mb"] * 1.05 + 1e-3, stats
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
    for rank, sum_error, rank_error in ddp_harness.run(codes_worker, world):
        # The sum is exact: the average differs from the mean of the ranks' quantized gradients
        # only by float rounding, far below one step.
        assert sum_error < 1e-3, (rank, sum_error)
        # Each rank quantized at one rank's step (D4 bound 15), whatever W: its error is within
        # the covering radius of D4 (1 per coordinate in steps), not W steps.
        assert 0.1 < rank_error <= 1.0 + 1e-4, (rank, rank_error)


def test_buckets_on_a_device_without_kernels_are_refused_plainly():
    # No GPU here: the meta device stands in for one whose kernels this build lacks.
    with pytest.raises(RuntimeError, match="no meta kernels"):
        ddp._check_device(torch.empty(16, device="meta"))
    ddp._check_device(torch.empty(16))  # the CPU has them


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    # Extra arguments (e.g. -k) select the cases: Bazel runs each mode as its own target.
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + sys.argv[1:] +
                         ([f"--junitxml={xml}"] if xml else [])))
