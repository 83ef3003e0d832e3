"""Quantization-aware training on Fashion-MNIST: an MLP (or a small CNN) in fp32 vs with QLinear
(weights only, and weights + activations), same seeds and data order.

    bazel run //torch_ext/examples:qat_fashion_mnist -- --epochs 3 --json
    bazel run //torch_ext/examples:qat_fashion_mnist -- --model cnn --epochs 3 --json
"""
import argparse
import json
import time

import torch

import coset_torch
from coset_torch.nn import convert
import fashion_mnist


def train(variant, args, train_x, train_y, test_x, test_y):
    torch.manual_seed(args.seed)
    model = fashion_mnist.MODELS[args.model]()
    config = coset_torch.Config(lattice=args.lattice, q=args.q, M=args.M)
    if variant == "weights":
        convert(model, config)
    elif variant == "weights+activations":
        convert(model, config, quantize_activations=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.time()
    loss = None
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
    result = {"variant": variant, "test_accuracy": fashion_mnist.accuracy(model, test_x, test_y),
              "final_loss": float(loss), "wall_seconds": time.time() - start}
    if variant != "fp32":
        # The deployed form: codes only, inner products on the codes.
        for m in model.modules():
            if isinstance(m, coset_torch.nn.QLinear):
                m.inference()
        result["test_accuracy_on_codes"] = fashion_mnist.accuracy(model, test_x, test_y)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=sorted(fashion_mnist.MODELS), default="mlp")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lattice", default="D4")
    p.add_argument("--q", type=int, default=4)
    p.add_argument("--M", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images (smoke runs)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train_x, train_y = fashion_mnist.load("train", args.limit)
    test_x, test_y = fashion_mnist.load("t10k", args.limit)
    results = [train(v, args, train_x, train_y, test_x, test_y) for v in ("fp32", "weights", "weights+activations")]
    if args.json:
        print(json.dumps({"model": args.model, "lattice": args.lattice, "q": args.q, "M": args.M, "epochs": args.epochs, "results": results}))
    else:
        for r in results:
            print(f"{r['variant']:20s} test accuracy {r['test_accuracy']:.4f}"
                  + (f" (on codes {r['test_accuracy_on_codes']:.4f})" if "test_accuracy_on_codes" in r else "")
                  + f"  final loss {r['final_loss']:.3f}  {r['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
