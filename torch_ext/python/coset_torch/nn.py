"""coset_torch.nn: QLinear, a drop-in nn.Linear with lattice-quantized weights and/or activations."""
import torch
from torch import nn

from . import Config, decode, encode, quantize


class QLinear(nn.Module):
    """nn.Linear with HNLQ quantization-aware training.

    Training: FP32 shadow weights; forward uses decode(encode(W)) (re-quantized every
    `quantize_every` steps, cached in between) and, optionally, quantized activations, with a
    straight-through (or clipped) gradient. `quantize_weights=False, quantize_activations=False`
    makes it exactly nn.Linear. `inference()` keeps only the codes and computes x @ W^T on them
    (torch.ops.coset.lut_linear). The codes travel in the state_dict (`weight_codes`).
    """

    def __init__(self, in_features, out_features, bias=True, config=Config(), quantize_weights=True,
                 quantize_activations=False, quantize_every=1, ste="ste", device=None, dtype=None):
        super().__init__()
        if quantize_every < 1:
            raise ValueError(f"quantize_every must be >= 1, got {quantize_every}")
        self.in_features, self.out_features = in_features, out_features
        self.config, self.ste = config, ste
        self.quantize_weights, self.quantize_activations = quantize_weights, quantize_activations
        self.quantize_every = quantize_every
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.register_buffer("weight_codes", torch.empty(0, dtype=torch.uint8))
        self._steps = 0
        self._cached = None
        self.inference_only = False
        self.reset_parameters()

    def reset_parameters(self):
        # The same initialization as nn.Linear.
        nn.Linear.reset_parameters(self)

    def _quantized_weight(self):
        if self._cached is None or (self.training and self._steps % self.quantize_every == 0):
            w = quantize(self.weight, self.config, self.ste)
            self.weight_codes = encode(self.weight.detach(), self.config)
            self._cached = w
            return w
        # Between re-quantizations: exactly the cached values (w - w.detach() is zero), with the
        # gradient still straight through to the shadow weights.
        return self._cached.detach() + (self.weight - self.weight.detach())

    def forward(self, x):
        if self.inference_only:
            if self.quantize_activations:
                x = quantize(x, self.config, self.ste)
            y = torch.ops.coset.lut_linear(x, self.weight_codes)
            return y + self.bias if self.bias is not None else y
        if self.quantize_activations:
            x = quantize(x, self.config, self.ste)
        w = self._quantized_weight() if self.quantize_weights else self.weight
        if self.training:
            self._steps += 1
        return nn.functional.linear(x, w, self.bias)

    def inference(self):
        """Freezes the current quantized weights as codes and drops the FP32 shadow weights."""
        if self.weight_codes.numel() == 0 or not self.quantize_weights:
            self.weight_codes = encode(self.weight.detach(), self.config)
        self.inference_only = True
        self.weight = None
        self._cached = None
        return self.eval()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The codes buffer changes size; take it as saved.
        key = prefix + "weight_codes"
        if key in state_dict:
            self.weight_codes = state_dict[key].clone()
        if self.inference_only and prefix + "weight" in state_dict:
            state_dict = dict(state_dict)
            state_dict.pop(prefix + "weight")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._cached = None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"lattice={self.config.lattice}, q={self.config.q}, M={self.config.M}, "
                f"weights={self.quantize_weights}, activations={self.quantize_activations}")


def convert(model, config=Config(), skip=(), **qlinear_kwargs):
    """Replaces every nn.Linear in `model` (except those whose qualified name is in `skip`) by a
    QLinear with the same weights. Returns the model."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            qualified = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not isinstance(child, QLinear) and qualified not in skip:
                q = QLinear(child.in_features, child.out_features, child.bias is not None, config, **qlinear_kwargs)
                with torch.no_grad():
                    q.weight.copy_(child.weight)
                    if child.bias is not None:
                        q.bias.copy_(child.bias)
                setattr(module, child_name, q)
    return model
