"""Each bundled challenge declares a budget its starter model fits and a model ten times larger does not."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from podium.core.budgets import over_budget
from podium.core.bundle.spec import parse_spec
from podium.core.cost import onnx_cost, torch_cost

CHALLENGES = Path(__file__).resolve().parents[2] / "challenges"
STARTERS = {"digits": ("DigitCNN", lambda shape: (shape, 10, 0.1, 0.3)),
            "spoken_commands": ("KeywordCNN", lambda shape: (shape, 10, 1.0))}
KERAS_ARGS = {"digits": lambda shape: (shape, 10), "spoken_commands": lambda shape: (shape, 10, 1.0)}


def _kit(name: str, *parts: str):
    path = CHALLENGES.joinpath(name, "starter", *parts)
    spec = importlib.util.spec_from_file_location(f"starter_{name}_{'_'.join(parts)}".replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def starter_model(name: str, shape) -> nn.Module:
    """The starter kit's own model class, built as its train.py builds it."""
    module = _kit(name, "train.py")
    cls, args = STARTERS[name]
    torch.manual_seed(0)
    return getattr(module, cls)(*args(shape)).eval()


class Wider(nn.Module):
    """The starter kits' layout (three conv blocks, two linear layers), `scale` times wider throughout."""

    def __init__(self, shape, scale: int):
        super().__init__()
        c, h, w = shape
        widths = [16 * scale, 32 * scale, 64 * scale]
        layers, prev = [], c
        for width in widths:
            layers += [nn.Conv2d(prev, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            prev = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(prev * (h // 8) * (w // 8), 128 * scale), nn.ReLU(),
                                  nn.Linear(128 * scale, 10))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_the_starter_fits_and_a_much_larger_model_does_not(name):
    spec = parse_spec((CHALLENGES / name / "challenge.toml").read_text())
    assert spec.max_params is not None and spec.max_mflops is not None
    budgets = {"max_params": spec.max_params, "max_mflops": spec.max_mflops}
    starter = torch_cost(starter_model(name, spec.input_shape), spec.input_shape)
    assert over_budget(params=starter.params, flops_per_input=starter.flops_per_input, **budgets) is None
    # Room to improve: the budget is a few times the starter, not a cage around it.
    assert starter.params * 2 <= spec.max_params and starter.flops_per_input * 2 <= spec.max_mflops * 1e6

    large = torch_cost(Wider(spec.input_shape, scale=6), spec.input_shape)
    assert large.params >= 10 * starter.params and large.flops_per_input >= 10 * starter.flops_per_input
    reason = over_budget(params=large.params, flops_per_input=large.flops_per_input, **budgets)
    assert reason.startswith(f"{large.params:,} parameters, over this challenge's budget of {spec.max_params:,}")
    assert "MFLOPs per input, over this challenge's budget of" in reason


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_the_keras_starter_fits_too(name, monkeypatch, tmp_path):
    import warnings

    import numpy as np

    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
    spec = parse_spec((CHALLENGES / name / "challenge.toml").read_text())
    keras.config.set_image_data_format("channels_first")
    try:
        model = _kit(name, "keras", "train.py").build_model(*KERAS_ARGS[name](spec.input_shape))
        model(np.zeros((2, *spec.input_shape), np.float32))
        path = tmp_path / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(path), format="onnx", verbose=False)
    finally:
        keras.config.set_image_data_format("channels_last")
    cost = onnx_cost(path.read_bytes(), spec.input_shape)
    assert cost.params == model.count_params()
    assert over_budget(params=cost.params, flops_per_input=cost.flops_per_input, max_params=spec.max_params,
                       max_mflops=spec.max_mflops) is None
