"""coset_torch: HNLQ lattice quantization for PyTorch (CPU ops; QLinear and the DDP hook follow).

    import coset_torch
    y = coset_torch.quantize(x)                     # decode(encode(x)), STE gradient
    blob = coset_torch.encode(x); x_hat = coset_torch.decode(blob)
"""
import dataclasses
import glob
import os

import torch

_LIBRARY_NAME = "libcoset_torch.so"


def _find_library():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("COSET_TORCH_LIBRARY", "")]
    # Bazel runfiles (py_test / bazel run) and a bazel-bin tree next to the sources.
    for root in (os.environ.get("TEST_SRCDIR", ""), os.environ.get("RUNFILES_DIR", "")):
        if root:
            candidates.append(os.path.join(root, "coset", "torch_ext", _LIBRARY_NAME))
    candidates.append(os.path.join(here, "..", "..", _LIBRARY_NAME))
    candidates += glob.glob(os.path.join(here, "..", "..", "..", "bazel-bin", "torch_ext", _LIBRARY_NAME))
    for path in candidates:
        if path and os.path.exists(path):
            return path
    raise ImportError(f"{_LIBRARY_NAME} not found; build it with `bazel build //torch_ext:{_LIBRARY_NAME}` "
                      "or set COSET_TORCH_LIBRARY")


torch.ops.load_library(_find_library())


@dataclasses.dataclass(frozen=True)
class Config:
    """Codec parameters (README "Parameters"); beta = 0 and block = 0 pick the measured defaults."""
    lattice: str = "D4"
    q: int = 4
    M: int = 2
    beta: float = 0.0
    alpha: float = 1.0 / 3.0
    block: int = 0
    scale: str = "rms"
    rotate: bool = False
    seed: int = 24301

    def args(self):
        return (self.lattice, self.q, self.M, self.beta, self.alpha, self.block, self.scale, self.rotate, self.seed)


def encode(x: torch.Tensor, config: Config = Config()) -> torch.Tensor:
    """Compresses x (any shape, last dimension quantized) into a uint8 blob tensor."""
    return torch.ops.coset.encode(x, *config.args())


def decode(blob: torch.Tensor) -> torch.Tensor:
    """Decompresses a blob from encode() into a float32 tensor of the original shape."""
    return torch.ops.coset.decode(blob)


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, config, ste, clip):
        y = torch.ops.coset.quantize(x, *config.args())
        if ste == "clipped":
            # Clipped STE: no gradient where the quantizer clipped the input, i.e. where the
            # reconstruction is further than `clip` (relative to the tensor's RMS) from it.
            rms = x.detach().pow(2).mean().sqrt().clamp_min(1e-30)
            ctx.save_for_backward(((y - x).abs() <= clip * rms).to(x.dtype))
        ctx.ste = ste
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.ste == "clipped":
            (mask,) = ctx.saved_tensors
            return grad * mask, None, None, None
        return grad, None, None, None


def quantize(x: torch.Tensor, config: Config = Config(), ste: str = "ste", clip: float = 1.0) -> torch.Tensor:
    """decode(encode(x)) with a straight-through gradient ("ste", default) or a clipped one."""
    if ste not in ("ste", "clipped"):
        raise ValueError(f"ste must be 'ste' or 'clipped', got {ste!r}")
    return _Quantize.apply(x, config, ste, clip)


def add_codes(blobs):
    """Compressed-domain sum of blobs that share scales (core/code_arith.h); returns a blob."""
    return torch.ops.coset.add_codes(list(blobs))


from . import ddp, nn  # noqa: E402  (they need the ops above)
