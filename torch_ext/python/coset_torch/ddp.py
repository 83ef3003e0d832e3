"""coset_torch.ddp: a DistributedDataParallel communication hook that compresses gradient buckets.

    state = coset_torch.ddp.register(ddp_model, mode="allgather")   # or "reference", "allreduce_codes"
    ...train...
    print(state.stats())

Modes (see README "DDP hook"):
  reference        quantize-dequantize, then the fp32 all-reduce (no bandwidth saving; a baseline)
  allgather        all-gather the compressed buckets; every rank decodes all of them and averages
  allreduce_codes  the compressed-domain all-reduce: ranks agree on per-block scales (a small max
                   all-reduce of block absmax values), encode without per-chunk ramp (T = 0, shared
                   scales and step), map the codes
                   to their integer coset vectors mod q^M, pack each coordinate into a field of
                   M log2 q + ceil(log2 W) bits of int32 words (so the integer sum never carries across
                   fields), all-reduce(SUM), unpack mod q^M and decode once.
Each mode is one function (reference_hook, allgather_hook, allreduce_codes_hook) over the shared
State, which owns the counters, residuals and step count (the shape of PyTorch's default_hooks.py
and powerSGD_hook.py); `hook` dispatches, and warm-up goes through allreduce_fp32.
Error feedback (each rank adds its previous quantization residual) is on by default; the first
`warmup_steps` steps use the plain fp32 all-reduce. Collectives are issued from the hook body in
a fixed order; callbacks only decode (on gloo, starting a collective in a callback can hang).

Shutting down (PyTorch releases before pytorch/pytorch#154976, 1.13 included): delete the DDP model
before `dist.destroy_process_group()`. The other order leaves DDP's reducer holding the last
reference to the gloo process group, whose destructor then joins gloo's worker threads with the GIL
held; a worker that still needs the GIL (to free a tensor Python touched, such as the last
collective's) deadlocks the process at exit. Released from Python, the group's destructor drops
the GIL first. This holds for any DDP job on gloo, with or without this hook.
"""
import dataclasses
import logging
import math
import time

import torch
import torch.distributed as dist

from . import MIN_STEP, Config, decode, encode


_log = logging.getLogger("coset_torch.ddp")

MODES = ("reference", "allgather", "allreduce_codes")


class State:
    """The hook's state: configuration, error-feedback residuals, the step counter and the
    counters behind stats(). Hooks change it only through its methods."""

    def __init__(self, process_group=None, config=None, mode="allgather", error_feedback=True, warmup_steps=0,
                 headroom=None, backend="embedded", daemon_address=None):
        if backend not in ("embedded", "daemon"):
            raise ValueError(f"backend must be embedded or daemon, got {backend!r}")
        if backend == "daemon" and not daemon_address:
            raise ValueError("backend='daemon' needs daemon_address (e.g. unix:/run/coset/cosetd.sock)")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.backend, self.daemon_address = backend, daemon_address
        self.daemon_retry_seconds = 10.0
        self._daemon_retry_at = 0.0
        self._warned = False
        self.process_group = process_group
        self.world = dist.get_world_size(process_group)
        self.mode = mode
        if config is None:
            # allreduce_codes needs shared scales: one step per bucket, no per-chunk ramp.
            config = Config(scale="none", beta=1.0) if mode == "allreduce_codes" else Config()
        self.config = config
        self.error_feedback = error_feedback
        self.warmup_steps = warmup_steps
        # allreduce_codes: the per-rank range is shrunk so that the sum of W ranks stays decodable.
        # Data-parallel gradients are strongly correlated, so their sum grows like W (not sqrt(W)).
        self.headroom = headroom if headroom is not None else float(self.world)
        self._residuals = {}
        self._iteration = 0
        self._counters = {"steps": 0, "grad_bytes": 0, "fp32_bytes": 0, "compress_seconds": 0.0,
                          "daemon_encodes": 0, "fallbacks": 0, "chunks": 0, "overloaded_chunks": 0}

    # --- step bookkeeping -------------------------------------------------------------------
    def begin_bucket(self, bucket):
        """Called once per bucket before any work: whether this bucket's step is a warm-up step.
        Decided from the step counter before the last bucket advances it, so every bucket of a
        step agrees."""
        in_warmup = self._iteration < self.warmup_steps
        if bucket.is_last():
            self._iteration += 1
        return in_warmup

    def end_bucket(self, bucket, grad_bytes, fp32_bytes):
        """Accounts the bytes one bucket put on the wire (grad_bytes) and what the fp32 ring
        all-reduce would have sent (fp32_bytes)."""
        self._counters["grad_bytes"] += grad_bytes
        self._counters["fp32_bytes"] += fp32_bytes
        if bucket.is_last():
            self._counters["steps"] += 1

    def add_compress_time(self, seconds):
        self._counters["compress_seconds"] += seconds

    # --- error feedback ---------------------------------------------------------------------
    @staticmethod
    def _residual_key(bucket):
        # Keyed by the bucket's parameters, not its index: DDP rebuilds buckets after iteration 0.
        return tuple(id(p) for p in bucket.parameters())

    def with_residual(self, bucket, buffer):
        """The gradient to compress: the bucket plus last step's quantization residual."""
        residual = self._residuals.get(self._residual_key(bucket)) if self.error_feedback else None
        if residual is not None and residual.numel() == buffer.numel():
            return buffer + residual
        return buffer

    def set_residual(self, bucket, residual):
        if self.error_feedback:
            self._residuals[self._residual_key(bucket)] = residual

    # --- compression ------------------------------------------------------------------------
    def encode(self, x, config):
        """Encodes through cosetd (backend 'daemon') or in-process; both give the same blob. If the
        daemon is unreachable or fails, falls back to in-process for this call, logs once, counts it."""
        blob = self._encode(x, config)
        chunks, overloaded = torch.ops.coset.overload_stats(blob).tolist()
        self._counters["chunks"] += chunks
        self._counters["overloaded_chunks"] += overloaded
        return blob

    def _encode(self, x, config):
        if self.backend == "daemon":
            if time.monotonic() >= self._daemon_retry_at:
                try:
                    blob = torch.ops.coset.daemon_encode(x.contiguous(), self.daemon_address, config.text())
                    self._counters["daemon_encodes"] += 1
                    return blob
                except RuntimeError as e:
                    # Do not wait on a dead daemon for every bucket: try it again in a while.
                    self._daemon_retry_at = time.monotonic() + self.daemon_retry_seconds
                    if not self._warned:
                        _log.warning("cosetd at %s failed (%s); compressing in-process (stats()['fallbacks'])",
                                     self.daemon_address, e)
                        self._warned = True
            self._counters["fallbacks"] += 1
        return encode(x, config)

    def stats(self):
        """Per-rank averages per step: bytes this rank put on the wire for gradients (ring
        collectives), the fp32 ring all-reduce's bytes they replaced, and compression time."""
        s = dict(self._counters)
        steps = max(1, s["steps"])
        return {
            "grad_bytes_per_rank_per_step": s["grad_bytes"] / steps,
            "fp32_bytes_per_rank_per_step": s["fp32_bytes"] / steps,
            "compress_seconds": s["compress_seconds"],
            "steps": s["steps"],
            "daemon_encodes": s["daemon_encodes"],
            "fallbacks": s["fallbacks"],
            # Chunks whose local encode needed the overload ramp (T > 0). In allreduce_codes such a
            # chunk is not summed exactly (its step differs across ranks); error feedback absorbs it.
            "overload_rate": s["overloaded_chunks"] / max(1, s["chunks"]),
        }


def _ring_allreduce_bytes(numel, world):
    return 2 * (world - 1) / world * numel * 4


def _first(fut):
    return fut.value()[0]


def allreduce_fp32(state, bucket):
    """The plain fp32 average (warm-up steps): what DDP does without a hook."""
    buffer = bucket.buffer()
    fp32_bytes = _ring_allreduce_bytes(buffer.numel(), state.world)
    state.end_bucket(bucket, fp32_bytes, fp32_bytes)
    return dist.all_reduce(buffer.div_(state.world), group=state.process_group, async_op=True).get_future().then(_first)


def reference_hook(state, bucket):
    """Quantize-dequantize each rank's gradient, then the fp32 all-reduce: the codec's effect on
    training without any bandwidth saving (a baseline)."""
    start = time.perf_counter()
    buffer = bucket.buffer()
    grad = state.with_residual(bucket, buffer)
    local = decode(state.encode(grad, state.config))
    state.set_residual(bucket, grad - local)
    state.add_compress_time(time.perf_counter() - start)
    fp32_bytes = _ring_allreduce_bytes(buffer.numel(), state.world)
    buffer.copy_(local).div_(state.world)
    state.end_bucket(bucket, fp32_bytes, fp32_bytes)
    return dist.all_reduce(buffer, group=state.process_group, async_op=True).get_future().then(_first)


def allgather_hook(state, bucket):
    """All-gather the compressed buckets; every rank decodes all of them and averages."""
    start = time.perf_counter()
    buffer = bucket.buffer()
    world, group = state.world, state.process_group
    grad = state.with_residual(bucket, buffer)
    blob = state.encode(grad, state.config)
    state.set_residual(bucket, grad - decode(blob))
    state.add_compress_time(time.perf_counter() - start)
    # Blobs differ in length: agree on the longest (a small blocking collective), pad, gather.
    size = torch.tensor([blob.numel()], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: blob.numel()] = blob
    gathered = [torch.zeros(longest, dtype=torch.uint8) for _ in range(world)]
    fut = dist.all_gather(gathered, padded, group=group, async_op=True).get_future()
    # Ring all-gather: W-1 blocks sent.
    state.end_bucket(bucket, (world - 1) * longest, _ring_allreduce_bytes(buffer.numel(), world))

    def finish(f):
        total = torch.zeros_like(buffer)
        for block, n in zip(f.value(), sizes):  # the gathered tensors, one per rank
            total += decode(block[: int(n.item())])
        return total.div_(world)

    return fut.then(finish)


def allreduce_codes_hook(state, bucket):
    """The compressed-domain all-reduce with error feedback (see allreduce_codes)."""
    start = time.perf_counter()
    buffer = bucket.buffer()
    grad = state.with_residual(bucket, buffer)
    fut, blob, per_entry, wire_bytes = _allreduce_codes(state, grad, start)
    start = time.perf_counter()
    state.set_residual(bucket, grad - decode(blob) * per_entry)
    state.add_compress_time(time.perf_counter() - start)
    state.end_bucket(bucket, wire_bytes, _ring_allreduce_bytes(buffer.numel(), state.world))
    return fut


_HOOKS = {"reference": reference_hook, "allgather": allgather_hook, "allreduce_codes": allreduce_codes_hook}


def hook(state: State, bucket):
    """The registered communication hook: fp32 during warm-up, then the state's mode."""
    if state.begin_bucket(bucket):
        return allreduce_fp32(state, bucket)
    return _HOOKS[state.mode](state, bucket)


def _field_bits(state):
    return int(round(state.config.M * math.log2(state.config.q))) + max(1, math.ceil(math.log2(state.world)))


def allreduce_codes(state, grad):
    """The compressed-domain all-reduce of one flat gradient (the allreduce_codes mode, without
    error feedback): returns a future holding the average of the ranks' quantized gradients."""
    return _allreduce_codes(state, grad, time.perf_counter())[0]


_BLOCK = 256


def shared_block_scales(grad, group):
    """Per-block absmax of `grad` (blocks of 256), max-reduced over the ranks: the shared scales."""
    n = grad.numel()
    padded = torch.zeros((n + _BLOCK - 1) // _BLOCK * _BLOCK, dtype=torch.float32)
    padded[:n] = grad
    scales = padded.view(-1, _BLOCK).abs().amax(dim=1)
    dist.all_reduce(scales, op=dist.ReduceOp.MAX, group=group)
    return scales.clamp_min(MIN_STEP)


def shared_beta(state):
    """The step relative to the shared block scale, chosen so that no sum can overload: after
    scaling every entry is at most 1, so a chunk has norm <= sqrt(d) and a sum of W chunks
    <= W sqrt(d); it stays decodable while that is inside the code region's inscribed ball,
    radius q^M beta * packing_radius(L). Every chunk of the sum is therefore exact."""
    dim, packing_radius = torch.ops.coset.lattice_info(state.config.lattice).tolist()
    qm = state.config.q ** state.config.M
    return state.headroom * math.sqrt(dim) / (qm * packing_radius)


def _allreduce_codes(state, grad, start):
    """Ranks agree on per-block scales (a small max all-reduce of block absmax values), encode
    without per-chunk ramp (T = 0, shared scales and step), map the codes to their integer coset
    vectors mod q^M, pack each coordinate into a field of M log2 q + ceil(log2 W) bits of int32
    words (so the integer sum never carries across fields), all-reduce(SUM), unpack mod q^M and
    decode once. Returns (future of the average, this rank's blob, per-entry scales, wire bytes)."""
    world, group, config = state.world, state.process_group, state.config
    n = grad.numel()
    scales = shared_block_scales(grad, group)
    per_entry = scales.repeat_interleave(_BLOCK)[:n]
    normalized = grad / per_entry
    blob = state.encode(normalized, dataclasses.replace(config, beta=shared_beta(state), block=0, scale="none",
                                                        rotate=False))
    c = torch.ops.coset.coset_vectors(blob).flatten().to(torch.int64)
    # Pack floor(31 / bits) fields per int32 word; fields never overflow: each holds < qm * W < 2^bits.
    qm = config.q ** config.M
    bits = _field_bits(state)
    per_word = 31 // bits
    count = c.numel()
    words = (count + per_word - 1) // per_word
    padded = torch.zeros(words * per_word, dtype=torch.int64)
    padded[:count] = c
    shifts = torch.arange(per_word, dtype=torch.int64) * bits
    packed = (padded.view(words, per_word) << shifts).sum(dim=1).to(torch.int32)
    state.add_compress_time(time.perf_counter() - start)
    wire_bytes = _ring_allreduce_bytes(words, world) + _ring_allreduce_bytes(scales.numel(), world)
    fut = dist.all_reduce(packed, group=group, async_op=True).get_future()

    def finish(f):
        summed = f.value()[0].to(torch.int64)
        unpacked = ((summed.unsqueeze(1) >> shifts) & ((1 << bits) - 1)).flatten()[:count] % qm
        total = decode(torch.ops.coset.from_coset_vectors(unpacked.to(torch.int32), blob))
        return (total * per_entry).div_(world)

    return fut.then(finish), blob, per_entry, wire_bytes


def register(ddp_model, mode="allgather", config=None, error_feedback=True, warmup_steps=0, process_group=None,
             backend="embedded", daemon_address=None):
    """Registers the hook on a DistributedDataParallel model and returns its State. backend
    'daemon' offloads bucket compression to cosetd at daemon_address (falling back in-process)."""
    state = State(process_group, config, mode, error_feedback, warmup_steps, backend=backend,
                  daemon_address=daemon_address)
    ddp_model.register_comm_hook(state, hook)
    return state
