"""The models the benchmark submits: a typical starter-kit CNN and a large model for upload memory."""
from __future__ import annotations

import io
import warnings

import torch
from torch import nn


class StarterCNN(nn.Module):
    """The shape of the starter kits: three conv -> ReLU -> pool blocks, then two linear layers."""

    def __init__(self, in_shape, num_classes: int = 10):
        super().__init__()
        c, h, w = in_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        flat = 64 * (h // 8) * (w // 8)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def torchscript_bytes(module: nn.Module) -> bytes:
    """torch.jit.script + torch.jit.save of module (in eval mode) into bytes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript on purpose: still accepted
        torch.jit.save(torch.jit.script(module.eval()), buf)
    return buf.getvalue()


def starter_cnn(in_shape, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A deterministic, untrained StarterCNN (timing does not depend on the weights)."""
    torch.manual_seed(seed)
    return StarterCNN(tuple(in_shape), num_classes).eval()


def big_model_bytes(target_mb: float, in_shape=(1, 28, 28), num_classes: int = 10, seed: int = 0) -> bytes:
    """A valid TorchScript model of about target_mb megabytes (one wide hidden layer)."""
    flat = 1
    for d in in_shape:
        flat *= d
    hidden = int(target_mb * (1 << 20) / 4 / flat)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
    return torchscript_bytes(model)


def wide_cnn(in_shape, num_classes: int = 10, width: int = 10, seed: int = 0) -> nn.Module:
    """The starter CNN with `width` times the channels: about width**2 times its convolution work and weights."""
    torch.manual_seed(seed)
    c, h, w = in_shape
    c1, c2, c3 = 16 * width, 32 * width, 64 * width
    return nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c3 * (h // 8) * (w // 8), 128 * width), nn.ReLU(),
        nn.Linear(128 * width, num_classes)).eval()


class MemoryHog(nn.Module):
    """Allocates `mb` megabytes on the input's device in forward(), past any sensible memory limit."""

    def __init__(self, num_classes: int, mb: int = 2048):
        super().__init__()
        self.num_classes = num_classes
        self.elements = mb * 2**20 // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hog = torch.ones([self.elements], device=x.device)
        return torch.zeros([x.shape[0], self.num_classes], device=x.device) + hog[0]
