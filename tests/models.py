"""TorchScript models for tests, built with torch in the test process."""
from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn


class SmallCNN(nn.Module):
    """A classic small CNN: conv -> relu -> pool, then a linear layer."""

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10):
        super().__init__()
        c, h, w = in_shape
        self.features = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * (h // 2) * (w // 2), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def scripted_bytes(module: nn.Module) -> bytes:
    """torch.jit.script + torch.jit.save into bytes."""
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buf)
    return buf.getvalue()


def small_cnn(seed: int = 0, in_shape=(1, 28, 28), num_classes: int = 10) -> nn.Module:
    """A deterministic, untrained SmallCNN."""
    torch.manual_seed(seed)
    return SmallCNN(in_shape, num_classes).eval()


def trained_cnn(x: np.ndarray, y: np.ndarray, num_classes: int, steps: int = 60, seed: int = 0) -> nn.Module:
    """A SmallCNN trained for a few steps, so scores differ from chance."""
    torch.manual_seed(seed)
    model = SmallCNN(tuple(x.shape[1:]), num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (64,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    return model.eval()


def predict(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """Argmax predictions of a module on x, computed here in the test process."""
    with torch.inference_mode():
        return module.eval()(torch.from_numpy(x)).argmax(1).numpy()


class WrongClasses(nn.Module):
    """Returns 3 scores per row where the challenge wants more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3)


class Sleeper(nn.Module):
    """Busy-loops for a while before answering (for time limits and crash tests)."""

    def __init__(self, seconds: float, num_classes: int = 10):
        super().__init__()
        self.seconds = seconds
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc = torch.zeros(1)
        n = int(self.seconds * 2000)
        for i in range(n):
            acc = acc + torch.ones(200, 200).sum() * 0.0
        return torch.zeros(x.shape[0], self.num_classes) + acc
