"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzip), as float tensors."""
import gzip
import os

import numpy as np
import torch

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _read(name):
    with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
        return f.read()


def load(split, limit=None):
    """(images [N, 784] float32 in [0, 1], labels [N] int64) for split 'train' or 't10k'."""
    images = np.frombuffer(_read(f"{split}-images-idx3-ubyte.gz"), dtype=np.uint8, offset=16)
    labels = np.frombuffer(_read(f"{split}-labels-idx1-ubyte.gz"), dtype=np.uint8, offset=8)
    images = images.reshape(-1, 784)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    # Standardize with the training statistics of Fashion-MNIST (mean 0.286, std 0.353).
    return (x - 0.286) / 0.353, torch.from_numpy(labels.astype(np.int64))


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def cnn():
    """A small CNN; its two Linear layers hold 97% of the parameters (QLinear replaces those; the
    convolutions stay fp32)."""
    return torch.nn.Sequential(torch.nn.Unflatten(1, (1, 28, 28)),
                               torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def wide():
    """An MLP of 11.6 M parameters (46 MB of gradients per step): communication-bound like the
    large-model training DDP compression is for, yet small enough to train on a CPU."""
    return torch.nn.Sequential(torch.nn.Linear(784, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 2048),
                               torch.nn.ReLU(), torch.nn.Linear(2048, 10))


MODELS = {"mlp": mlp, "cnn": cnn, "wide": wide}


def accuracy(model, x, y, batch=2000):
    model.eval()
    with torch.no_grad():
        correct = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)
