"""coset_torch: HNLQ lattice quantization for PyTorch (CPU ops; QLinear and the DDP hook follow).

    import coset_torch
    y = coset_torch.quantize(x)                     # decode(encode(x)), STE gradient
    blob = coset_torch.encode(x); x_hat = coset_torch.decode(blob)
"""
import dataclasses
import glob
import os
from typing import Optional

import torch

_LIBRARY_NAME = "libcoset_torch.so"


def _find_library():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("COSET_TORCH_LIBRARY", "")]
    # pip install ./torch_ext: the library is inside the package.
    candidates += sorted(glob.glob(os.path.join(here, "libcoset_torch*.so")))
    # Bazel runfiles (py_test / bazel run) and a bazel-bin tree next to the sources.
    for root in (os.environ.get("TEST_SRCDIR", ""), os.environ.get("RUNFILES_DIR", "")):
        if root:
            candidates.append(os.path.join(root, "coset", "torch_ext", _LIBRARY_NAME))
    candidates.append(os.path.join(here, "..", "..", _LIBRARY_NAME))
    candidates += glob.glob(os.path.join(here, "..", "..", "..", "bazel-bin", "torch_ext", _LIBRARY_NAME))
    for path in candidates:
        if path and os.path.exists(path):
            return path
    raise ImportError(f"{_LIBRARY_NAME} not found; `python3 -m pip install --no-build-isolation ./torch_ext`, "
                      f"or `bazel build //torch_ext:{_LIBRARY_NAME}`, or set COSET_TORCH_LIBRARY")


# The extension this package loaded (bench/ddp_time_to_accuracy.py hands it to its subprocesses).
LIBRARY = _find_library()
torch.ops.load_library(LIBRARY)

# The smallest block scale x beta the codec codes (core/limits.h kMinStep); smaller blocks decode to 0.
MIN_STEP = 1e-30


def _config_class():
    """Builds Config from the codec's field table (core/params.h, via torch.ops.coset.codec_fields),
    so every field, name and default here is the C++ one: nothing to keep in sync by hand."""
    types = {"lattice": str, "enum": str, "int": int, "uint64": int, "float": float, "bool": bool}
    fields, choices = [], {}
    for line in torch.ops.coset.codec_fields().splitlines():
        name, kind, default, names = line.split("\t")
        value = default == "true" if kind == "bool" else types[kind](default)
        fields.append((name, types[kind], dataclasses.field(default=value)))
        if names:
            choices[name] = tuple(names.split(","))

    def text(self):
        """The text form the ops take ("lattice=D4,q=4,M=2,..."): every field, floats exact."""
        def show(value):
            if isinstance(value, bool):
                return "true" if value else "false"
            return repr(value) if isinstance(value, float) else str(value)
        return ",".join(f"{f.name}={show(getattr(self, f.name))}" for f in dataclasses.fields(self))

    doc = ("Codec parameters (README \"Parameters\"), one field per entry of the codec's field table: "
           + ", ".join(f"{name}={field.default!r}" for name, _, field in fields)
           + ". beta = 0 and block = 0 pick the measured defaults. Choices: "
           + "; ".join(f"{k} in {v}" for k, v in choices.items()) + ".")
    cls = dataclasses.make_dataclass("Config", fields, frozen=True, namespace={"text": text, "__doc__": doc})
    cls.__module__ = __name__
    cls.CHOICES = choices
    return cls


Config = _config_class()


def encode(x: torch.Tensor, config: Config = Config()) -> torch.Tensor:
    """Compresses x (float32, float64, bfloat16 or float16; any shape, last dimension quantized)
    into a uint8 blob tensor. The codec works on x's float32 values; the blob records x's dtype."""
    return torch.ops.coset.encode(x, config.text())


def decode(blob: torch.Tensor, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Decompresses a blob from encode() into a tensor of the original shape and dtype (float32,
    float64, bfloat16 or float16, as encode() was given), or of `dtype` when set."""
    return torch.ops.coset.decode(blob, dtype)


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, config, ste, clip):
        y = torch.ops.coset.quantize(x, config.text())
        if ste == "clipped":
            # Clipped STE: no gradient where the quantizer clipped the input, i.e. where the
            # reconstruction is further than `clip` (relative to the tensor's RMS) from it.
            rms = x.detach().pow(2).mean().sqrt().clamp_min(MIN_STEP)
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
