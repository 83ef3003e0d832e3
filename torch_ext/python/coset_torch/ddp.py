"""coset_torch.ddp: a DistributedDataParallel communication hook that compresses gradient buckets.

    state = coset_torch.ddp.register(ddp_model, mode="reduce_scatter")
    ...train...
    print(state.stats())

Modes (README "DDP hook"); W ranks, b stored bits per entry (D4 q=4 M=2: about 4.8 with the
hook's default config), per rank and step:
  reference        quantize-dequantize, then the fp32 all-reduce (no bandwidth saving; a baseline)
  allgather        all-gather every rank's bucket packet, decode all W and average:
                   (W - 1) b bits per entry, growing with W
  allreduce_codes  exact integer sums: ranks agree on per-block scales (a small max all-reduce),
                   quantize at one rank's step and all-reduce the lattice points in packed integer
                   fields wide enough for the sum of W (core/exact_sum.h):
                   2 (W - 1) / W x (M log2 q + 1 + log2 W) bits per entry
  reduce_scatter   packets all-to-all (each rank receives its shard of every other rank's bucket),
                   decoded and averaged in float with its own shard (exact: never encoded),
                   re-encoded and all-gathered, with error feedback on both quantizations:
                   2 (W - 1) / W x b bits per entry (under 2 b at any W)

Each direction of each mode is one C++ op over the whole bucket (torch.ops.coset.bucket_encode /
bucket_decode / bucket_reduce_encode / exact_sum_encode / exact_sum_decode, threaded over torch's
intra-op threads); the Python here only issues collectives. Packets have a size fixed by
(numel, W, config) (core/FORMAT.md "Bucket packets"), so no rank waits for another's sizes. Every
tensor the hook makes is on the bucket's device, and the collectives and dtypes are ones NCCL has
(uint8, int64 and float32; all_reduce SUM/MAX, all_gather, all_to_all). The ops have CPU kernels
only until the CUDA backend registers its own.

Each mode is one function on a flat gradient (_reference, _allgather, _allreduce_codes,
_reduce_scatter) over the shared State, which owns the counters, residuals and step count (the
shape of PyTorch's default_hooks.py and powerSGD_hook.py); `hook` dispatches, warm-up goes through
allreduce_fp32, and `average` runs a mode outside DDP (tests, bench/ddp_fidelity.py). Error
feedback (each rank adds its previous quantization residual) is on by default. Collectives are
issued from the hook body in a fixed order; callbacks only decode (on gloo, starting a collective
in a callback can hang).

Shutting down (PyTorch releases before pytorch/pytorch#154976, 1.13 included): delete the DDP model
before `dist.destroy_process_group()`. The other order leaves DDP's reducer holding the last
reference to the gloo process group, whose destructor then joins gloo's worker threads with the GIL
held; a worker that still needs the GIL (to free a tensor Python touched, such as the last
collective's) deadlocks the process at exit. Released from Python, the group's destructor drops
the GIL first. This holds for any DDP job on gloo, with or without this hook.
"""
import logging
import threading
import time

import torch
import torch.distributed as dist

from . import Config

_log = logging.getLogger("coset_torch.ddp")

MODES = ("reference", "allgather", "allreduce_codes", "reduce_scatter")


def default_config():
    """The hook's codec: D4 q=4 M=2 with absmax block scales (a chunk can never exceed its block's
    scale, so 7 ramp steps always suffice) and 3-bit overload counters in the packets."""
    return Config(scale="absmax", t_max=7, on_cap="zero")


class State:
    """The hook's state: configuration, error-feedback residuals, the step counter and the
    counters behind stats(). Hooks change it only through its methods."""

    def __init__(self, process_group=None, config=None, mode="reduce_scatter", error_feedback=True, warmup_steps=0,
                 bound=0, backend="embedded", daemon_address=None):
        if backend not in ("embedded", "daemon"):
            raise ValueError(f"backend must be embedded or daemon, got {backend!r}")
        if backend == "daemon":
            if not daemon_address:
                raise ValueError("backend='daemon' needs daemon_address (e.g. unix:/run/coset/cosetd.sock)")
            if not hasattr(torch.ops.coset, "daemon_bucket_encode"):
                raise ValueError("backend='daemon' needs the Bazel-built extension (//torch_ext:libcoset_torch.so); "
                                 "the pip-installed one is built without gRPC")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.backend, self.daemon_address = backend, daemon_address
        self.daemon_retry_seconds = 10.0
        self._daemon_retry_at = 0.0
        self._warned = False
        self.process_group = process_group
        self.world = dist.get_world_size(process_group)
        self.rank = dist.get_rank(process_group)
        self.mode = mode
        self.config = config if config is not None else default_config()
        self.config_text = self.config.text()
        self.error_feedback = error_feedback
        self.warmup_steps = warmup_steps
        # allreduce_codes: the largest integral lattice coordinate a rank sends (0 = the code
        # region's span, q^M - 1 for D4); the fields hold W times that.
        self.bound = bound
        self._residuals = {}
        self._buffers = {}
        self._iteration = 0
        self._lock = threading.Lock()  # callbacks run on the backend's threads
        self._counters = {"steps": 0, "grad_bytes": 0, "fp32_bytes": 0, "compressed_entries": 0, "hook_seconds": 0.0,
                          "hook_cpu_seconds": 0.0,
                          "daemon_encodes": 0, "fallbacks": 0}

    # --- step bookkeeping -------------------------------------------------------------------
    def begin_bucket(self, bucket):
        """Called once per bucket before any work: whether this bucket's step is a warm-up step.
        Decided from the step counter before the last bucket advances it, so every bucket of a
        step agrees."""
        in_warmup = self._iteration < self.warmup_steps
        if bucket.is_last():
            self._iteration += 1
        return in_warmup

    def end_bucket(self, bucket, entries, grad_bytes, compressed=True):
        """Accounts the bytes one bucket of `entries` gradients put on the wire per rank, against
        what the fp32 ring all-reduce would have sent."""
        with self._lock:
            self._counters["grad_bytes"] += grad_bytes
            self._counters["fp32_bytes"] += ring_allreduce_bytes(entries * 4, self.world)
            if compressed:  # warm-up buckets take no hook time: they would dilute hook_ms_per_mb
                self._counters["compressed_entries"] += entries
            if bucket.is_last():
                self._counters["steps"] += 1

    def add_hook_time(self, seconds, cpu_seconds):
        with self._lock:
            self._counters["hook_seconds"] += seconds
            self._counters["hook_cpu_seconds"] += cpu_seconds

    # --- error feedback ---------------------------------------------------------------------
    def residual(self, bucket, role, numel, device):
        """This rank's residual of `numel` entries for one quantization (`role`) of a bucket: zeros
        at first, then what the last step's quantization left out; None without error feedback
        (kept under _bucket_key)."""
        if not self.error_feedback:
            return None
        key = _bucket_key(bucket, role)
        r = self._residuals.get(key)
        if r is None or r.numel() != numel or r.device != device:
            r = torch.zeros(numel, dtype=torch.float32, device=device)
            self._residuals[key] = r
        return r

    def buffer(self, bucket, role, shape, dtype, like):
        """A tensor of one role (packets, gathered packets, words) that a bucket reuses every step:
        a fresh bucket-sized tensor costs a page fault per 4 KiB, as much as decoding it. Safe to
        reuse: DDP waits for a step's futures before the next step's hooks run."""
        key = _bucket_key(bucket, role)
        b = self._buffers.get(key)
        if b is None or tuple(b.shape) != tuple(shape) or b.dtype != dtype or b.device != like.device:
            b = torch.empty(shape, dtype=dtype, device=like.device)
            self._buffers[key] = b
        return b

    # --- compression ------------------------------------------------------------------------
    def bucket_encode(self, x, residual, parts, out=None, skip=-1):
        """Packets of x + residual (updating the residual), shard `skip` left out: through cosetd
        (backend 'daemon') or in-process; both give the same packets. If the daemon is unreachable
        or fails, falls back to in-process for this call, logs once, counts it."""
        if self.backend == "daemon":
            if time.monotonic() >= self._daemon_retry_at:
                try:
                    packets = torch.ops.coset.daemon_bucket_encode(x, residual, self.daemon_address, self.config_text,
                                                                   parts, skip)
                    self._counters["daemon_encodes"] += 1
                    return packets
                except RuntimeError as e:
                    # Do not wait on a dead daemon for every bucket: try it again in a while.
                    self._daemon_retry_at = time.monotonic() + self.daemon_retry_seconds
                    if not self._warned:
                        _log.warning("cosetd at %s failed (%s); compressing in-process (stats()['fallbacks'])",
                                     self.daemon_address, e)
                        self._warned = True
            self._counters["fallbacks"] += 1
        return torch.ops.coset.bucket_encode(x, residual, self.config_text, parts, out, skip)

    def stats(self):
        """Per-rank averages per step: bytes this rank put on the wire for gradients (ring
        collectives), the fp32 ring all-reduce's bytes they replaced, and the hook's own time
        (encode, decode and sums; not the collectives), also per MB of gradient: wall-clock, and the
        CPU time of the threads that ran it (without the time spent waiting for a core, which
        the wall-clock time includes when ranks share cores; the ops' whole CPU time when torch
        runs them on one intra-op thread)."""
        with self._lock:
            s = dict(self._counters)
        steps = max(1, s["steps"])
        megabytes = s["compressed_entries"] * 4 / 1e6
        return {
            "grad_bytes_per_rank_per_step": s["grad_bytes"] / steps,
            "fp32_bytes_per_rank_per_step": s["fp32_bytes"] / steps,
            "hook_seconds": s["hook_seconds"],
            "hook_ms_per_step": 1e3 * s["hook_seconds"] / steps,
            "hook_ms_per_mb": 1e3 * s["hook_seconds"] / megabytes if megabytes else 0.0,
            "hook_cpu_ms_per_mb": 1e3 * s["hook_cpu_seconds"] / megabytes if megabytes else 0.0,
            "steps": s["steps"],
            "daemon_encodes": s["daemon_encodes"],
            "fallbacks": s["fallbacks"],
        }


def _bucket_key(bucket, role):
    """What a bucket's per-step state (residuals, buffers) is kept under: its parameters, not its
    index, since DDP rebuilds buckets after iteration 0."""
    return tuple(id(p) for p in bucket.parameters()), role


def ring_allreduce_bytes(nbytes, world):
    """Bytes one rank sends in a ring all-reduce of nbytes (also reduce-scatter + all-gather)."""
    return 2 * (world - 1) / world * nbytes


class _Timer:
    """Adds the wall-clock and thread CPU time of a with-block to the state's hook time."""

    def __init__(self, state):
        self.state = state

    def __enter__(self):
        self.start, self.start_cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc):
        self.state.add_hook_time(time.perf_counter() - self.start, time.thread_time() - self.start_cpu)


def _float_view(buffer):
    """The bucket as a flat float32 tensor, and how to return a result in the bucket's dtype."""
    if buffer.dtype == torch.float32:
        return buffer, lambda out: out
    return buffer.float(), lambda out: out.to(buffer.dtype)


def _first(fut):
    return fut.value()[0]


def _all_gather_into(state, packet, gathered):
    """All-gathers one packet per rank into gathered [W, packet_bytes]; returns (gathered, future)."""
    fut = dist.all_gather(list(gathered.unbind(0)), packet, group=state.process_group, async_op=True).get_future()
    return gathered, fut


def allreduce_fp32(state, bucket):
    """The plain fp32 average (warm-up steps): what DDP does without a hook."""
    buffer = bucket.buffer()
    state.end_bucket(bucket, buffer.numel(), ring_allreduce_bytes(buffer.numel() * buffer.element_size(), state.world),
                     compressed=False)
    return dist.all_reduce(buffer.div_(state.world), group=state.process_group, async_op=True).get_future().then(_first)


# Each mode on one flat float32 gradient x: (future of the average over the ranks, bytes this rank
# sends). residual(role, numel) gives the error-feedback residual of one quantization (or None);
# buffer(role, shape, dtype) a tensor the mode may reuse every step. The average is written into x
# itself (as DDP's own all-reduce does with the bucket) once x has been encoded.

def _reference(state, x, residual, buffer):
    """Quantize-dequantize each rank's gradient, then the fp32 all-reduce: the codec's effect on
    training without any bandwidth saving (a baseline)."""
    n = x.numel()
    _, packet_bytes = torch.ops.coset.bucket_layout(n, 1, state.config_text)
    with _Timer(state):
        packet = state.bucket_encode(x, residual("local", n), 1, buffer("packet", (1, packet_bytes), torch.uint8))
        local = torch.ops.coset.bucket_decode(packet, state.config_text, n, 1, True, 1.0 / state.world, x)
    fut = dist.all_reduce(local, group=state.process_group, async_op=True).get_future()
    return fut.then(_first), ring_allreduce_bytes(n * 4, state.world)


def _allgather(state, x, residual, buffer):
    """All-gather the bucket packets; every rank decodes all W and averages (one fused op)."""
    n, world = x.numel(), state.world
    _, packet_bytes = torch.ops.coset.bucket_layout(n, 1, state.config_text)
    with _Timer(state):
        packet = state.bucket_encode(x, residual("local", n), 1, buffer("packet", (1, packet_bytes), torch.uint8))
    gathered, fut = _all_gather_into(state, packet[0], buffer("gathered", (world, packet_bytes), torch.uint8))

    def finish(_):
        with _Timer(state):
            return torch.ops.coset.bucket_decode(gathered, state.config_text, n, 1, True, 1.0 / world, x)

    return fut.then(finish), (world - 1) * packet_bytes  # ring all-gather: W - 1 packets out


def _reduce_scatter(state, x, residual, buffer):
    """Packets all-to-all (rank r receives shard r of every other rank's bucket), their average
    with rank r's own shard re-encoded (with its own error feedback) and all-gathered. The own
    shard enters the sum exactly: it never crosses the wire, so it is neither encoded nor decoded
    (W - 1 of W shards are quantized in the first step, and its local residual stays zero)."""
    n, world, rank, group, config = x.numel(), state.world, state.rank, state.process_group, state.config_text
    shard_len, packet_bytes = torch.ops.coset.bucket_layout(n, world, config)
    with _Timer(state):
        packets = state.bucket_encode(x, residual("local", n), world,
                                      buffer("packets", (world, packet_bytes), torch.uint8), skip=rank)
    received = buffer("received", (world, packet_bytes), torch.uint8)
    # Blocking: the second collective needs this one's result, and collectives are never started
    # from callbacks (see the module docstring).
    dist.all_to_all_single(received, packets, group=group)
    shard_out = buffer("shard_packet", (1, packet_bytes), torch.uint8)
    with _Timer(state):
        if state.backend == "daemon":
            mine = torch.ops.coset.bucket_decode(received, config, n, world, True, 1.0 / world,
                                                 buffer("mine", (shard_len,), torch.float32), x, rank)
            shard_packet = state.bucket_encode(mine, residual("shard", shard_len), 1, shard_out)
        else:  # the same packet, the sum decoded straight into the encode
            shard_packet = torch.ops.coset.bucket_reduce_encode(received, residual("shard", shard_len), config, n,
                                                                world, 1.0 / world, shard_out, x, rank)
    gathered, fut = _all_gather_into(state, shard_packet[0], buffer("gathered", (world, packet_bytes), torch.uint8))

    def finish(_):
        with _Timer(state):
            return torch.ops.coset.bucket_decode(gathered, config, n, world, False, 1.0, x)

    return fut.then(finish), 2 * (world - 1) * packet_bytes  # W - 1 packets out in each collective


def _allreduce_codes(state, x, residual, buffer):
    """Ranks max-reduce per-block absmax values into shared scales, quantize to lattice points at
    one rank's step, all-reduce(SUM) the packed int64 words (fields never carry: core/exact_sum.h)
    and scale the sum once."""
    world, group, config = state.world, state.process_group, state.config_text
    n = x.numel()
    r = residual("local", n)
    with _Timer(state):
        scales = torch.ops.coset.block_absmax(x, r, config)
    dist.all_reduce(scales, op=dist.ReduceOp.MAX, group=group)
    words_len, _ = torch.ops.coset.exact_sum_layout(n, config, world, state.bound)
    with _Timer(state):
        words = torch.ops.coset.exact_sum_encode(x, r, scales, config, world, state.bound,
                                                 buffer("words", (words_len,), torch.int64))
    fut = dist.all_reduce(words, group=group, async_op=True).get_future()

    def finish(f):
        with _Timer(state):
            return torch.ops.coset.exact_sum_decode(f.value()[0], scales, config, world, state.bound, n, x)

    return fut.then(finish), ring_allreduce_bytes(words.numel() * 8 + scales.numel() * 4, world)


_MODES = {"reference": _reference, "allgather": _allgather, "allreduce_codes": _allreduce_codes,
          "reduce_scatter": _reduce_scatter}


def average(state, x, residuals=None):
    """The state's mode on one flat float32 gradient outside DDP (x is left as it is): (a future
    holding the average over the ranks, the bytes this rank sends). residuals: a dict role ->
    tensor for error feedback (updated in place; missing roles start at zeros), or None for none."""
    def residual(role, numel):
        if residuals is None:
            return None
        if role not in residuals:
            residuals[role] = torch.zeros(numel, dtype=torch.float32, device=x.device)
        return residuals[role]

    def buffer(role, shape, dtype):
        return torch.empty(shape, dtype=dtype, device=x.device)

    # On a copy: the modes write the average into their input, as the hook does into the bucket.
    return _MODES[state.mode](state, x.clone(), residual, buffer)


def _check_device(x):
    """The ops dispatch on the bucket's device; say plainly when this build has no kernels there."""
    if x.device.type == "cpu":
        return
    try:
        key = {"cuda": "CUDA", "meta": "Meta"}.get(x.device.type, x.device.type)
        has_kernels = torch._C._dispatch_has_kernel_for_dispatch_key("coset::bucket_encode", key)
    except (RuntimeError, ValueError):
        has_kernels = False
    if not has_kernels:
        raise RuntimeError(f"coset_torch: this build has no {x.device.type} kernels for the DDP ops "
                           "(CPU only until the CUDA backend registers them); keep the model on the CPU or "
                           "use a build with CUDA kernels")


def _bucket_hook(state, bucket):
    x, restore = _float_view(bucket.buffer())
    _check_device(x)
    fut, wire_bytes = _MODES[state.mode](state, x, lambda role, numel: state.residual(bucket, role, numel, x.device),
                                         lambda role, shape, dtype: state.buffer(bucket, role, shape, dtype, x))
    state.end_bucket(bucket, x.numel(), wire_bytes)
    return fut.then(lambda f: restore(f.value()))


def hook(state: State, bucket):
    """The registered communication hook: fp32 during warm-up, then the state's mode."""
    if state.begin_bucket(bucket):
        return allreduce_fp32(state, bucket)
    return _bucket_hook(state, bucket)


def register(ddp_model, mode="reduce_scatter", config=None, error_feedback=True, warmup_steps=0, process_group=None,
             bound=0, backend="embedded", daemon_address=None):
    """Registers the hook on a DistributedDataParallel model and returns its State. backend
    'daemon' offloads bucket compression to cosetd at daemon_address (falling back in-process)."""
    state = State(process_group, config, mode, error_feedback, warmup_steps, bound=bound, backend=backend,
                  daemon_address=daemon_address)
    ddp_model.register_comm_hook(state, hook)
    return state
