"""The scoring child measures every model it loads: params, FLOPs per input, the scoring pass and peak memory."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.models import model_bytes, scripted_bytes

N, C = 200, 10


class Net(torch.nn.Module):
    """conv(1->4, 3x3) relu pool2, linear(4*13*13 -> 10): counted by hand below."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 3)
        self.fc = torch.nn.Linear(width * 13 * 13, C)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


def hand_count(width: int = 4) -> tuple[int, int]:
    params = width * 9 + width + width * 169 * C + C
    flops = 2 * (width * 26 * 26 * 9 + width * 169 * C)
    return params, flops


class Hungry(torch.nn.Module):
    """Keeps a 64 MB tensor alive while it scores: its peak memory must show it."""

    def forward(self, x):
        big = torch.ones(16 * 1024 * 1024, dtype=x.dtype)
        return torch.zeros(x.size(0), 10) + big[:1]


def _save(tmp_path, module, name, fmt: str = "torchscript"):
    path = tmp_path / f"{name}.{fmt}"
    path.write_bytes(scripted_bytes(module) if fmt == "torchscript" else model_bytes(fmt, module))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "test.npz"
    np.savez(path, x=np.random.default_rng(3).random((N, 1, 28, 28), dtype=np.float32), y=np.arange(N) % C)
    return str(path)


def _run(pool, data, model_path, **kw):
    return pool.run(model_path=model_path, inputs_path=data, inputs_key="cost-inputs", num_classes=C,
                    time_limit_s=20, memory_limit_mb=1024, **kw)


@pytest.mark.parametrize("fmt", ["torchscript", "exported_program", "onnx"])
def test_a_scored_model_carries_its_exact_cost_in_every_format(pool, data, tmp_path, fmt):
    r = _run(pool, data, _save(tmp_path, Net(), "net", fmt))
    assert r.ok, r.reason
    params, flops = hand_count()
    assert r.format == fmt
    assert r.cost == {"format": fmt, "params": params, "flops_per_input": flops, "error": None}
    assert r.inference_ms == pytest.approx(r.timings["inference_s"] * 1000) and r.inference_ms > 0
    assert r.peak_memory_mb is not None and r.peak_memory_mb >= 0
    assert r.timings["cost_s"] > 0


def test_peak_memory_shows_what_the_model_held(pool, data, tmp_path):
    small = _run(pool, data, _save(tmp_path, Net(), "net"))
    hungry = _run(pool, data, _save(tmp_path, Hungry(), "hungry"))
    assert hungry.ok, hungry.reason
    assert hungry.peak_memory_mb >= 64 > small.peak_memory_mb


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_model_over_budget_is_measured_and_not_scored(pool, data, tmp_path, fmt):
    params, flops = hand_count(64)
    r = _run(pool, data, _save(tmp_path, Net(64), "wide", fmt), max_params=50_000)
    assert not r.ok and r.scores is None
    assert (r.cost["params"], r.cost["flops_per_input"]) == (params, flops)
    assert r.inference_ms is None and r.timings["inference_s"] == 0.0
    r = _run(pool, data, _save(tmp_path, Net(64), "wide", fmt), max_mflops=flops / 1e6)  # exactly at the budget: fits
    assert r.ok, r.reason


def test_check_reports_the_cost(pool, tmp_path):
    samples = np.random.default_rng(4).random((4, 1, 28, 28), dtype=np.float32)
    report = pool.check_report(model_path=_save(tmp_path, Net(), "net"), samples=samples, num_classes=C,
                               time_limit_s=20, memory_limit_mb=1024)
    assert report.problems == []
    assert (report.cost["params"], report.cost["flops_per_input"]) == hand_count()
