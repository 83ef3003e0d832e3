"""QLinear, convert, lut_linear and add_codes."""
import io
import os
import sys

import pytest
import torch

import coset_torch
from coset_torch.nn import QLinear, convert


def make_pair(in_features=64, out_features=24, **kwargs):
    torch.manual_seed(0)
    lin = torch.nn.Linear(in_features, out_features)
    q = QLinear(in_features, out_features, **kwargs)
    with torch.no_grad():
        q.weight.copy_(lin.weight)
        q.bias.copy_(lin.bias)
    return lin, q


def test_without_quantization_it_is_exactly_linear():
    lin, q = make_pair(quantize_weights=False, quantize_activations=False)
    x = torch.randn(3, 7, 64)
    assert torch.equal(q(x), lin(x))


def test_close_to_linear_at_high_rate():
    lin, q = make_pair(config=coset_torch.Config(q=8, M=3))
    x = torch.randn(16, 64)
    rel = (q(x) - lin(x)).norm() / lin(x).norm()
    assert rel < 2e-3
    lin2, q2 = make_pair(config=coset_torch.Config(q=8, M=3), quantize_activations=True)
    assert (q2(x) - lin2(x)).norm() / lin2(x).norm() < 4e-3


def test_gradients_reach_the_shadow_weights_straight_through():
    lin, q = make_pair()
    x = torch.randn(8, 64)
    q(x).sum().backward()
    lin(x).sum().backward()
    assert torch.allclose(q.weight.grad, lin.weight.grad)
    assert torch.allclose(q.bias.grad, lin.bias.grad)


def test_quantize_every_caches_the_codes_between_steps():
    _, q = make_pair(quantize_every=3)
    x = torch.randn(4, 64)
    y0 = q(x)
    with torch.no_grad():
        q.weight.add_(0.5)
    y1 = q(x)  # step 2 of 3: cached quantized weights, so the output does not move
    assert torch.equal(y0, y1)
    q(x)
    y3 = q(x)  # step 4: re-quantized
    assert not torch.equal(y0, y3)


def test_inference_mode_computes_on_the_codes():
    _, q = make_pair()
    x = torch.randn(5, 64)
    q.eval()
    y_train_path = q(x)
    q.inference()
    assert q.weight is None
    y_codes = q(x)
    assert torch.allclose(y_codes, y_train_path, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inference", [False, True])
def test_state_dict_round_trip(inference):
    _, q = make_pair()
    x = torch.randn(5, 64)
    q.eval()
    q(x)
    if inference:
        q.inference()
    want = q(x)
    buffer = io.BytesIO()
    torch.save(q.state_dict(), buffer)
    _, fresh = make_pair()
    torch.manual_seed(123)
    fresh.reset_parameters()
    if inference:
        fresh.inference()
    fresh.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    fresh.eval()
    assert torch.equal(fresh(x), want)
    assert torch.equal(fresh.weight_codes, q.weight_codes)


def test_convert_swaps_linears_except_skipped():
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Sequential(torch.nn.Linear(32, 8)), torch.nn.Linear(8, 2))
    convert(model, coset_torch.Config(), skip=["3"])
    assert isinstance(model[0], QLinear) and isinstance(model[2][0], QLinear)
    assert type(model[3]) is torch.nn.Linear
    assert model(torch.randn(4, 16)).shape == (4, 2)


def test_lut_linear_matches_decode_then_matmul():
    w = torch.randn(37, 300)
    blob = coset_torch.encode(w)
    x = torch.randn(2, 3, 300)
    y = torch.ops.coset.lut_linear(x, blob)
    want = x.double() @ coset_torch.decode(blob).double().T
    assert y.shape == (2, 3, 37)
    assert torch.allclose(y.double(), want, rtol=1e-5, atol=1e-4)
    with pytest.raises(RuntimeError, match="in_features"):
        torch.ops.coset.lut_linear(torch.randn(2, 299), blob)


def test_add_codes_sums_codes_that_share_scales():
    config = coset_torch.Config(scale="none", beta=0.25)
    a, b = torch.randn(64) * 0.3, torch.randn(64) * 0.3
    total = coset_torch.decode(coset_torch.add_codes([coset_torch.encode(a, config), coset_torch.encode(b, config)]))
    exact = coset_torch.decode(coset_torch.encode(a, config)) + coset_torch.decode(coset_torch.encode(b, config))
    assert (total == exact).float().mean() > 0.9  # exact wherever the sum does not overload
    with pytest.raises(RuntimeError, match="share scales|shared scales"):
        coset_torch.add_codes([coset_torch.encode(a), coset_torch.encode(b)])


if __name__ == "__main__":
    xml = os.environ.get("XML_OUTPUT_FILE")
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"] + ([f"--junitxml={xml}"] if xml else [])))
