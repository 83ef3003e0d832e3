"""torch.ops.coset against the core (through cosetctl, the same C++ codec): bit-exact blobs, the
straight-through gradients, any shape, and clear errors."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

import coset_torch

# Bazel's runfiles, or (scripts/test.sh's pip pass, outside Bazel) the main build's binary, which
# the script names: bazel-bin follows whichever configuration built last.
COSETCTL = (os.path.join(os.environ["TEST_SRCDIR"], "coset", "client", "cosetctl") if "TEST_SRCDIR" in os.environ
            else os.environ["COSETCTL"])


def cosetctl_encode(x, *flags):
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x.numpy())
        subprocess.run([COSETCTL, "encode", os.path.join(d, "x.npy"), os.path.join(d, "x.coset"), *flags], check=True,
                       capture_output=True)
        return open(os.path.join(d, "x.coset"), "rb").read()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("config,flags", [
    (coset_torch.Config(), []),
    (coset_torch.Config(lattice="E8", q=4), ["--lattice", "E8", "--q", "4"]),
    (coset_torch.Config(lattice="A2", q=3, M=3, scale="absmax", rotate=True, block=64),
     ["--lattice", "A2", "--q", "3", "--M", "3", "--scale", "absmax", "--rotate", "--block", "64"]),
])
def test_blobs_are_bit_exact_with_the_core(config, flags, dtype):
    torch.manual_seed(0)
    x = torch.randn(7, 3, 45, dtype=dtype)
    blob = coset_torch.encode(x, config)
    assert blob.dtype == torch.uint8 and blob.dim() == 1
    assert bytes(blob.numpy().tobytes()) == cosetctl_encode(x, *flags)
    y = coset_torch.decode(blob)
    assert y.shape == x.shape and y.dtype == dtype  # the original dtype, recorded in the blob
    assert torch.equal(y, coset_torch.decode(blob, dtype=torch.float32).to(dtype))
    snr = 10 * torch.log10(x.double().pow(2).sum() / (x.double() - y.double()).pow(2).sum())
    assert snr > 15


def test_quantize_is_decode_of_encode_in_the_input_dtype():
    x = torch.randn(4, 100, dtype=torch.float64)
    q = coset_torch.quantize(x)
    assert q.dtype == torch.float64
    assert torch.equal(q, coset_torch.decode(coset_torch.encode(x)).double())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tensors_are_coded_from_their_exact_float32_values(dtype):
    torch.manual_seed(3)
    x = (torch.randn(6, 256) * 3).to(dtype)
    blob, wide = coset_torch.encode(x), coset_torch.encode(x.float())
    # The same codes as for the widened tensor (only the recorded dtype differs), decoded back to
    # the input's dtype by default and to float32 on request.
    assert torch.equal(coset_torch.decode(blob, dtype=torch.float32), coset_torch.decode(wide))
    y = coset_torch.decode(blob)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y, coset_torch.decode(wide).to(dtype))
    assert coset_torch.decode(wide, dtype=dtype).dtype == dtype
    q = coset_torch.quantize(x)
    assert q.dtype == dtype and torch.equal(q, y)
    # Weights on codes take half-precision activations too, and answer in their dtype.
    w = coset_torch.encode(torch.randn(32, 256))
    out = torch.ops.coset.lut_linear(x, w)
    assert out.dtype == dtype
    assert torch.equal(out, torch.ops.coset.lut_linear(x.float(), w).to(dtype))


@pytest.mark.parametrize("shape", [(), (1,), (5,), (0, 4), (2, 0), (3, 1, 1), (2, 3, 4, 5)])
def test_any_shape(shape):
    x = torch.randn(shape)
    y = coset_torch.decode(coset_torch.encode(x))
    assert y.shape == x.shape


def test_straight_through_gradients():
    x = torch.randn(8, 64, requires_grad=True)
    (coset_torch.quantize(x) * 3).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 3.0))
    # Clipped STE: the gradient is masked where the reconstruction moved further than clip * RMS.
    x.grad = None
    coset_torch.quantize(x, ste="clipped", clip=1e-12).sum().backward()
    assert x.grad.sum() < x.numel()  # nearly every entry moved a little
    x.grad = None
    coset_torch.quantize(x, ste="clipped", clip=1e6).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    with pytest.raises(ValueError):
        coset_torch.quantize(x, ste="bogus")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(RuntimeError, match=r"input\[2\] is nan"):
        coset_torch.encode(torch.tensor([0.0, 1.0, float("nan")]))
    with pytest.raises(RuntimeError, match=r"q \(=2\)"):
        coset_torch.encode(torch.randn(8), coset_torch.Config(q=2))
    with pytest.raises(RuntimeError, match="float32, float64, bfloat16 or float16"):
        coset_torch.encode(torch.arange(8))
    with pytest.raises(RuntimeError, match="scale"):
        coset_torch.encode(torch.randn(8), coset_torch.Config(scale="loud"))
    blob = coset_torch.encode(torch.randn(64))
    with pytest.raises(RuntimeError, match="checksum|truncated"):
        coset_torch.decode(blob[:-3])
    with pytest.raises(RuntimeError, match="uint8"):
        coset_torch.decode(blob.float())
    with pytest.raises(RuntimeError, match="float32, float64, bfloat16 or float16, got Int"):
        coset_torch.decode(blob, dtype=torch.int32)


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))


def _hook_config():
    from coset_torch import ddp
    return ddp.default_config().text()


@pytest.mark.parametrize("parts", [1, 3])
def test_bucket_ops_with_error_feedback_are_encode_then_decode(parts):
    """The fused in-process bucket encode gives the packets of encoding g = x + residual and leaves
    residual = g - decode(packets), bit for bit; `out` buffers change nothing but where results go."""
    config = _hook_config()
    torch.manual_seed(3)
    n = 10_000 + 37  # a cut last shard
    x, residual = torch.randn(n), torch.randn(n) * 0.05
    g = x + residual
    want = torch.ops.coset.bucket_encode(g, None, config, parts)
    decoded = torch.ops.coset.bucket_decode(want, config, n, parts, False, 1.0)
    packets = torch.empty_like(want)
    got = torch.ops.coset.bucket_encode(x, residual, config, parts, packets)
    assert got.data_ptr() == packets.data_ptr()
    assert torch.equal(got, want)
    assert torch.equal(residual, g - decoded)
    into = torch.full((n,), 7.0)
    assert torch.ops.coset.bucket_decode(want, config, n, parts, False, 1.0, into).data_ptr() == into.data_ptr()
    assert torch.equal(into, decoded)


@pytest.mark.parametrize("count", [1, 2, 5])
def test_bucket_decode_sum_is_the_sum_in_turn(count):
    """A fused decode-and-sum of k packets equals decoding each and accumulating in turn, bit for
    bit, into a fresh tensor, a shard-sized buffer, or the bucket itself (its first numel entries)."""
    config = _hook_config()
    n = 9_000 + 5
    torch.manual_seed(4)
    packets = torch.cat([torch.ops.coset.bucket_encode(torch.randn(n), None, config, 1) for _ in range(count)])
    s = 1.0 / count
    terms = [torch.ops.coset.bucket_decode(packets[k:k + 1].contiguous(), config, n, 1, True, 1.0)
             for k in range(count)]
    want = 0.0 + s * terms[0]
    for t in terms[1:]:
        want = want + s * t
    fresh = torch.ops.coset.bucket_decode(packets, config, n, 1, True, s)
    assert torch.equal(fresh, want)
    shard = torch.empty(fresh.numel())
    torch.ops.coset.bucket_decode(packets, config, n, 1, True, s, shard)
    assert torch.equal(shard, want)
    bucket = torch.full((n,), 3.0)
    torch.ops.coset.bucket_decode(packets, config, n, 1, True, s, bucket)
    assert torch.equal(bucket, want[:n])


def test_bucket_ops_refuse_bad_outputs_and_non_finite_gradients():
    config = _hook_config()
    n = 4096
    x, residual = torch.randn(n), torch.randn(n) * 0.01
    packets = torch.ops.coset.bucket_encode(x, None, config, 2)
    with pytest.raises(RuntimeError, match="out must be a contiguous"):
        torch.ops.coset.bucket_decode(packets, config, n, 2, False, 1.0, torch.empty(n, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="out has sizes"):
        torch.ops.coset.bucket_decode(packets, config, n, 2, False, 1.0, torch.empty(n - 1))
    with pytest.raises(RuntimeError, match="out has sizes"):
        torch.ops.coset.bucket_encode(x, None, config, 2, torch.empty(1, packets.size(1), dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="out must be a contiguous"):
        torch.ops.coset.bucket_encode(x, None, config, 2, torch.empty(packets.size(1), 2, dtype=torch.uint8).t())
    # A NaN gradient (an fp16 overflow under a grad scaler) is refused before the residual changes.
    bad = x.clone()
    bad[1234] = float("inf")
    kept = residual.clone()
    with pytest.raises(RuntimeError, match=r"input\[1234\] is inf"):
        torch.ops.coset.bucket_encode(bad, residual, config, 2)
    assert torch.equal(residual, kept)


# 600,011 entries in 2 parts: shards past 131,072 entries, coded in long rows (core/FORMAT.md).
@pytest.mark.parametrize("parts,count,feedback,n", [(1, 1, True, 20_011), (2, 2, True, 20_011), (3, 3, False, 20_011),
                                                    (4, 4, True, 20_011), (2, 2, True, 600_011)])
def test_bucket_reduce_encode_is_decode_sum_then_encode(parts, count, feedback, n):
    """reduce_scatter's fused step (a shard's packets summed and re-encoded with error feedback)
    gives the packet and residual of decoding the sum and then encoding it, bit for bit (n: the
    last shard cut)."""
    config = _hook_config()
    torch.manual_seed(5 + parts)
    shard_len, _ = torch.ops.coset.bucket_layout(n, parts, config)
    packets = torch.cat([torch.ops.coset.bucket_encode(torch.randn(n), None, config, parts)[-1:] for _ in range(count)])
    s = 1.0 / count
    residual = torch.randn(shard_len) * 0.05 if feedback else None
    mine = torch.ops.coset.bucket_decode(packets, config, n, parts, True, s)
    want_residual = residual.clone() if feedback else None
    want = torch.ops.coset.bucket_encode(mine, want_residual, config, 1)
    got_residual = residual.clone() if feedback else None
    out = torch.empty_like(want)
    got = torch.ops.coset.bucket_reduce_encode(packets, got_residual, config, n, parts, s, out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, want)
    if feedback:
        assert torch.equal(got_residual, want_residual)
        assert not torch.equal(got_residual, residual)


def test_bucket_encode_skip_leaves_one_shard_out():
    """skip: that shard's row is zeros and its residual unchanged; every other row and residual is
    what the full encode gives, bit for bit."""
    config = _hook_config()
    torch.manual_seed(6)
    n, parts, skip = 20_000 + 11, 3, 1
    shard_len, _ = torch.ops.coset.bucket_layout(n, parts, config)
    x, residual = torch.randn(n), torch.randn(n) * 0.05
    want_residual = residual.clone()
    want = torch.ops.coset.bucket_encode(x, want_residual, config, parts)
    packets = torch.full_like(want, 0xAB)
    got = torch.ops.coset.bucket_encode(x, residual, config, parts, packets, skip)
    assert torch.equal(got[skip], torch.zeros_like(got[skip]))
    kept = [p for p in range(parts) if p != skip]
    assert torch.equal(got[kept], want[kept])
    mine = slice(skip * shard_len, (skip + 1) * shard_len)
    assert not torch.equal(residual[mine], want_residual[mine])  # untouched: still the old values
    residual[mine] = want_residual[mine]
    assert torch.equal(residual, want_residual)


@pytest.mark.parametrize("parts,rank,feedback", [(1, 0, True), (2, 0, True), (2, 1, False), (4, 3, True),
                                                 (4, 2, True)])
def test_sums_with_the_own_shard_start_from_it_exactly(parts, rank, feedback):
    """reduce_scatter's sums with the rank's own shard: bucket_decode(sum, own, rank) is
    ((s * own + s * d_0) + ...) over the other ranks' packets in rank order (row `rank` is never
    read), the own shard zero past the bucket's end; bucket_reduce_encode gives the packet and residual of
    encoding that sum, bit for bit."""
    config = _hook_config()
    torch.manual_seed(7 + parts + rank)
    n = 20_000 + 11  # cut last shard
    shard_len, _ = torch.ops.coset.bucket_layout(n, parts, config)
    own = torch.randn(n)
    packets = torch.cat([torch.ops.coset.bucket_encode(torch.randn(n), None, config, parts)[rank:rank + 1]
                         for _ in range(parts)])
    packets[rank] = 0xFF  # never read
    s = 1.0 / parts
    first = rank * shard_len
    want = torch.zeros(shard_len)
    kept = min(shard_len, n - first)
    want[:kept] = s * own[first:first + kept]
    for k in range(parts):
        if k != rank:
            want = want + s * torch.ops.coset.bucket_decode(packets[k:k + 1].contiguous(), config, n, parts, True, 1.0)
    mine = torch.ops.coset.bucket_decode(packets, config, n, parts, True, s, None, own, rank)
    assert torch.equal(mine, want)
    residual = torch.randn(shard_len) * 0.05 if feedback else None
    want_residual = residual.clone() if feedback else None
    want_packet = torch.ops.coset.bucket_encode(mine, want_residual, config, 1)
    got_residual = residual.clone() if feedback else None
    got = torch.ops.coset.bucket_reduce_encode(packets, got_residual, config, n, parts, s, None, own, rank)
    assert torch.equal(got, want_packet)
    if feedback:
        assert torch.equal(got_residual, want_residual)


def test_sums_with_the_own_shard_refuse_bad_arguments():
    config = _hook_config()
    n, parts = 8192, 2
    shard_len, _ = torch.ops.coset.bucket_layout(n, parts, config)
    own = torch.randn(n)
    packets = torch.ops.coset.bucket_encode(own, None, config, parts)
    residual = torch.zeros(shard_len)
    for op in (lambda *a: torch.ops.coset.bucket_reduce_encode(packets, residual, config, n, parts, 0.5, None, *a),
               lambda *a: torch.ops.coset.bucket_decode(packets, config, n, parts, True, 0.5, None, *a)):
        with pytest.raises(RuntimeError, match=r"rank must be in 0\.\.1, got 2"):
            op(own, 2)
        with pytest.raises(RuntimeError, match="own has 8191 entries"):
            op(own[:-1], 0)
        with pytest.raises(RuntimeError, match="without the rank's own bucket"):
            op(None, 1)
    with pytest.raises(RuntimeError, match="one packet row per rank"):
        torch.ops.coset.bucket_reduce_encode(packets[:1].contiguous(), residual, config, n, parts, 0.5, None, own, 0)
    with pytest.raises(RuntimeError, match="skip must be -1 or in 0..1"):
        torch.ops.coset.bucket_encode(own, None, config, parts, None, 2)
    hostile = packets.clone()
    hostile[1, 0:2] = torch.tensor([0x80, 0x7F], dtype=torch.uint8)  # the first bf16 block scale: +inf
    kept = residual.clone()
    with pytest.raises(RuntimeError, match=r"is (inf|-inf|nan)"):
        torch.ops.coset.bucket_reduce_encode(hostile, residual, config, n, parts, 0.5, None, own, 0)
    assert torch.equal(residual, kept)


def test_bucket_reduce_encode_refuses_hostile_packets_before_the_residual_changes():
    """A packet whose block scale would overflow the sum (a peer's corrupt or hostile bytes) fails
    with a clear error, and the residual is left as it was; so do wrong sizes."""
    config = _hook_config()
    n, parts = 8192, 2
    shard_len, packet_bytes = torch.ops.coset.bucket_layout(n, parts, config)
    packets = torch.ops.coset.bucket_encode(torch.randn(n), None, config, parts)
    residual = torch.randn(shard_len) * 0.01
    kept = residual.clone()
    hostile = packets.clone()
    hostile[1, 0:2] = torch.tensor([0x80, 0x7F], dtype=torch.uint8)  # the first bf16 block scale: +inf
    with pytest.raises(RuntimeError, match=r"sum of the coded terms\[\d+\] is (inf|-inf|nan)"):
        torch.ops.coset.bucket_reduce_encode(hostile, residual, config, n, parts, 0.5)
    assert torch.equal(residual, kept)
    with pytest.raises(RuntimeError, match="packets have"):
        torch.ops.coset.bucket_reduce_encode(packets[:, :-1].contiguous(), residual, config, n, parts, 0.5)
    with pytest.raises(RuntimeError, match="residual has"):
        torch.ops.coset.bucket_reduce_encode(packets, residual[:-1], config, n, parts, 0.5)
    with pytest.raises(RuntimeError, match="at least one packet"):
        torch.ops.coset.bucket_reduce_encode(packets[:0], residual, config, n, parts, 0.5)
    assert torch.equal(residual, kept)
