"""Models for tests in the three formats (torch.export, ONNX, TorchScript), built with torch in the test process."""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import tempfile
import time
import warnings

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


@contextlib.contextmanager
def torchscript_quietly():
    """Build TorchScript on purpose (the format is still accepted) without torch 2.13's deprecation warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def scripted_bytes(module: nn.Module) -> bytes:
    """torch.jit.script + torch.jit.save into bytes."""
    buf = io.BytesIO()
    with torchscript_quietly():
        torch.jit.save(torch.jit.script(module.eval()), buf)
    return buf.getvalue()


def _batch_spec(module: nn.Module) -> dict:
    arg = next(iter(inspect.signature(module.forward).parameters))  # "x", or "input" for an nn.Sequential
    return {arg: {0: torch.export.Dim("batch")}}


def exported_bytes(module: nn.Module, in_shape=(1, 28, 28), dynamic: bool = True) -> bytes:
    """torch.export.export (dynamic batch unless told otherwise) + torch.export.save into bytes: a .pt2."""
    module = module.eval()
    example = (torch.zeros(2, *in_shape),)
    program = torch.export.export(module, example, dynamic_shapes=_batch_spec(module) if dynamic else None)
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def onnx_bytes(module: nn.Module, in_shape=(1, 28, 28), dynamic: bool = True) -> bytes:
    """torch.onnx.export(dynamo=True) into one self-contained file's bytes (optimize=False keeps BatchNorm apart)."""
    module = module.eval()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    with tempfile.TemporaryDirectory(prefix="podium-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.zeros(2, *in_shape),), path, dynamo=True, external_data=False,
                              optimize=False, dynamic_shapes=_batch_spec(module) if dynamic else None)
        with open(path, "rb") as f:
            return f.read()


def model_bytes(fmt: str, module: nn.Module, in_shape=(1, 28, 28)) -> bytes:
    """The module exported in one of the three formats (torchscript | exported_program | onnx)."""
    if fmt == "torchscript":
        return scripted_bytes(module)
    if fmt == "exported_program":
        return exported_bytes(module, in_shape)
    return onnx_bytes(module, in_shape)


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
        for _ in range(n):
            acc = acc + torch.ones(200, 200).sum() * 0.0
        return torch.zeros(x.shape[0], self.num_classes) + acc


def slow_model(seconds: float, classes: int = 3) -> bytes:
    """A TorchScript model that busy-loops about `seconds` in a scoring child (calibrated here, one thread), then answers 0.

    Calibrated on what a scoring child does with a freshly loaded model, through the child's own functions:
    the cost measurement (a FlopCounterMode pass at batch 1, which runs this loop about 20x slower than
    plain), then the scoring pass (one batch for the small test challenges, and two inputs again one at a time).
    """
    from podium.worker.sandbox.child import measure, score
    from podium.worker.sandbox.loaders import load_model

    probe_bytes = scripted_bytes(Sleeper(0.5, classes))
    x = np.zeros((2, 1, 8, 8), np.float32)
    threads = torch.get_num_threads()
    try:
        times = []
        for _ in range(2):
            with torchscript_quietly():
                probe = load_model(probe_bytes, device="cpu", threads=1)
            t0 = time.perf_counter()
            measure(probe, x)
            score(probe, x, len(x), classes)
            times.append(time.perf_counter() - t0)
        per_unit = min(times) / 0.5
    finally:
        torch.set_num_threads(threads)
    return scripted_bytes(Sleeper(seconds / max(per_unit, 1e-4), classes))
