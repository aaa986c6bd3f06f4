"""A host missing a confinement layer (simulated with PODIUM_SANDBOX_DISABLE_LAYERS) refuses to score unconfined."""
from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest
import torch

from podium.worker.sandbox import SandboxUnavailable, ScoringPool
from podium.worker.sandbox.confine import DISABLE_ENV


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    d = tmp_path_factory.mktemp("incomplete")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        torch.jit.save(torch.jit.trace(model, torch.zeros(2, 1, 4, 4)), buf)
    (d / "m.pt").write_bytes(buf.getvalue())
    np.savez(d / "x.npz", x=np.random.default_rng(0).random((10, 1, 4, 4), dtype=np.float32))
    return dict(model_path=str(d / "m.pt"), inputs_path=str(d / "x.npz"), inputs_key="incomplete", num_classes=3,
                time_limit_s=30, memory_limit_mb=1024)


@pytest.mark.parametrize("layers", ["landlock", "seccomp", "landlock,seccomp"])
def test_missing_layer_refuses_to_score_and_says_so(job, layers, monkeypatch, caplog):
    monkeypatch.setenv(DISABLE_ENV, layers)
    log = logging.getLogger("podium.test.incomplete")
    with caplog.at_level(logging.ERROR, logger=log.name), ScoringPool(threads=1, log=log) as pool:
        pool.start()
        assert any("SANDBOX CONFINEMENT INCOMPLETE" in r.getMessage() for r in caplog.records)
        for layer in layers.split(","):
            assert pool.health()["layers"][layer].startswith("unavailable")
        with pytest.raises(SandboxUnavailable, match="SANDBOX CONFINEMENT INCOMPLETE.*PODIUM_SANDBOX_ALLOW_INCOMPLETE"):
            pool.run(**job)


def test_operator_opt_in_scores_with_a_layer_missing(job, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "landlock")
    with ScoringPool(threads=1, allow_incomplete=True) as pool:
        result = pool.run(**job)
    assert result.ok and result.scores.shape == (10, 3)
    assert result.confinement["landlock"].startswith("unavailable")


def test_complete_host_scores_without_opt_in(job, monkeypatch):
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    with ScoringPool(threads=1) as pool:
        assert pool.incomplete() is None or pytest.skip(f"this host lacks a layer: {pool.incomplete()}")
        assert pool.run(**job).ok
