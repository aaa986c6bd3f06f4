"""Tests for the starter kits: train.py --quick trains, exports TorchScript, and passes the grader's checks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
KITS = {"digits": [1, 28, 28], "spoken_commands": [1, 40, 101]}


def _fake_train_npz(path: Path, shape, n: int = 200) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    if shape[1] == 40:
        x = np.log(x + 1e-6)  # log-mel-like range
    np.savez(path, x=x, y=np.arange(n, dtype=np.int64) % 10)


def _run(kit: str, tmp_path: Path, with_podium: bool) -> subprocess.CompletedProcess:
    data = tmp_path / "train.npz"
    _fake_train_npz(data, KITS[kit])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not with_podium:
        # A plain module named podium shadows the installed package, as on a student's laptop without it.
        (tmp_path / "shadow").mkdir()
        (tmp_path / "shadow" / "podium.py").write_text("")
        env["PYTHONPATH"] = str(tmp_path / "shadow")
    script = ROOT / "challenges" / kit / "starter" / "train.py"
    return subprocess.run(
        [sys.executable, str(script), "--quick", "--data", str(data), "--out", str(tmp_path / "model.pt"), "--threads", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )


@pytest.mark.parametrize("kit", sorted(KITS))
def test_quick_training_exports_a_checked_torchscript_model(kit, tmp_path):
    result = _run(kit, tmp_path, with_podium=True)
    assert result.returncode == 0, result.stderr
    assert "validation accuracy" in result.stdout
    assert "podium checks: passed" in result.stdout, result.stdout + result.stderr
    model = torch.jit.load(str(tmp_path / "model.pt"))
    assert isinstance(model, torch.jit.ScriptModule)
    for batch in (1, 5):
        out = model(torch.zeros(batch, *KITS[kit]))
        assert out.shape == (batch, 10) and torch.isfinite(out).all()


def test_without_podium_the_kit_still_exports_and_says_to_run_podium_check(tmp_path):
    result = _run("spoken_commands", tmp_path, with_podium=False)
    assert result.returncode == 0, result.stderr
    assert "podium check" in result.stdout and "--challenge spoken-commands" in result.stdout
    model = torch.jit.load(str(tmp_path / "model.pt"))
    # A gain is a constant offset in log-mel; the kit's model removes each clip's mean, so scores do not move.
    x = torch.from_numpy(np.log(np.random.default_rng(1).random((3, 1, 40, 101), dtype=np.float32) + 1e-6))
    assert torch.allclose(model(x), model(x + 2.5), atol=1e-4)


@pytest.mark.parametrize("kit, slug", [("digits", "digits"), ("spoken_commands", "spoken-commands")])
def test_readme_gives_the_commands(kit, slug):
    text = (ROOT / "challenges" / kit / "starter" / "README.md").read_text()
    assert "python train.py" in text
    assert f"podium check model.pt --challenge {slug}" in text
    assert f"podium submit model.pt --challenge {slug} --wait" in text
