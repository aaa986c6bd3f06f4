"""The starter kits: train.py --quick trains, exports (.pt2 by default, ONNX, TorchScript; Keras to ONNX), passes the
grader's checks, and prints no deprecation warning; the Keras kit reaches the leaderboard through a real worker."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from podium.cli.client import extract_starter
from podium.core.bundle.archive import zip_dir
from podium.core.modelformat import inspect_model

ROOT = Path(__file__).resolve().parents[2]
KITS = {"digits": [1, 28, 28], "spoken_commands": [1, 40, 101]}
SLUGS = {"digits": "digits", "spoken_commands": "spoken-commands"}


def _fake_train_npz(path: Path, shape, n: int = 200) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    if shape[1] == 40:
        x = np.log(x + 1e-6)  # log-mel-like range
    np.savez(path, x=x, y=np.arange(n, dtype=np.int64) % 10)


def _run(kit: str, tmp_path: Path, with_podium: bool = True, *args: str, keras: bool = False,
         data: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    if data is None:
        data = tmp_path / "train.npz"
        _fake_train_npz(data, KITS[kit])
    # Python's own warning filters, as on a student's machine: what the kit itself triggers (torch.jit's
    # deprecation is attributed to the kit's code) shows.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(ROOT)
    if not with_podium:
        # A plain module named podium shadows the installed package, as on a student's laptop without it.
        (tmp_path / "shadow").mkdir()
        (tmp_path / "shadow" / "podium.py").write_text("")
        env["PYTHONPATH"] = str(tmp_path / "shadow")
    script = ROOT / "challenges" / kit / "starter" / ("keras/train.py" if keras else "train.py")
    return subprocess.run([sys.executable, str(script), "--data", str(data), "--threads", "1", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def _no_deprecation(result: subprocess.CompletedProcess) -> None:
    text = result.stdout + result.stderr
    assert "Warning" not in text and "Please switch to" not in text and "` is deprecated" not in text, text


@pytest.mark.parametrize("kit", sorted(KITS))
def test_quick_training_exports_a_checked_pt2_without_warnings(kit, tmp_path):
    result = _run(kit, tmp_path, True, "--quick")
    assert result.returncode == 0, result.stderr
    assert "validation accuracy" in result.stdout
    assert "podium checks: passed" in result.stdout, result.stdout + result.stderr
    _no_deprecation(result)
    path = tmp_path / "model.pt2"
    assert inspect_model(path, max_bytes=2**30) == "exported_program"
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        for batch in (1, 5):
            out = module(torch.zeros(batch, *KITS[kit]))
            assert out.shape == (batch, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("fmt, name, expected", [("onnx", "model.onnx", "onnx"), ("torchscript", "model.pt", "torchscript")])
def test_the_other_formats_export_and_pass_the_checks(fmt, name, expected, tmp_path):
    result = _run("digits", tmp_path, True, "--quick", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert "podium checks: passed" in result.stdout, result.stdout + result.stderr
    _no_deprecation(result)
    assert inspect_model(tmp_path / name, max_bytes=2**30) == expected


def test_without_podium_the_kit_still_exports_and_says_to_run_podium_check(tmp_path):
    result = _run("spoken_commands", tmp_path, False, "--quick")
    assert result.returncode == 0, result.stderr
    assert "podium check" in result.stdout and "--challenge spoken-commands" in result.stdout
    model = torch.export.load(str(tmp_path / "model.pt2")).module()
    # A gain is a constant offset in log-mel; the kit's model removes each clip's mean, so scores do not move.
    x = torch.from_numpy(np.log(np.random.default_rng(1).random((3, 1, 40, 101), dtype=np.float32) + 1e-6))
    with torch.no_grad():
        assert torch.allclose(model(x), model(x + 2.5), atol=1e-4)


@pytest.mark.parametrize("kit", sorted(KITS))
def test_keras_kit_exports_a_checked_onnx_model_without_tensorflow(kit, tmp_path):
    result = _run(kit, tmp_path, True, "--quick", keras=True)
    assert result.returncode == 0, result.stderr
    assert "podium checks: passed" in result.stdout, result.stdout + result.stderr
    _no_deprecation(result)
    assert "tensorflow" not in sys.modules
    path = tmp_path / "model.onnx"
    assert inspect_model(path, max_bytes=2**30) == "onnx"
    session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "keras_tensor" and inp.shape[1:] == KITS[kit] and not isinstance(inp.shape[0], int)
    out = session.run(None, {inp.name: np.zeros((3, *KITS[kit]), np.float32)})[0]
    assert out.shape == (3, 10) and np.allclose(out.sum(1), 1.0, atol=1e-5)  # the Softmax layer


@pytest.mark.parametrize("kit, slug", [("digits", "digits"), ("spoken_commands", "spoken-commands")])
def test_readmes_give_the_commands_and_the_formats(kit, slug):
    text = (ROOT / "challenges" / kit / "starter" / "README.md").read_text()
    assert "python train.py" in text
    assert f"podium check model.pt2 --challenge {slug}" in text
    assert f"podium submit model.pt2 --challenge {slug} --wait" in text
    assert "torch.onnx.export(" in text and "torch.jit.script(" in text and "torch.export.export(" in text
    assert f"podium starter {slug} DIR --framework keras" in text
    keras_text = (ROOT / "challenges" / kit / "starter" / "keras" / "README.md").read_text()
    assert f"podium submit model.onnx --challenge {slug} --wait" in keras_text
    assert 'set_image_data_format("channels_first")' in keras_text
    assert "keras" in (ROOT / "challenges" / kit / "starter" / "keras" / "requirements.txt").read_text()


def test_starter_zip_gives_each_framework_its_kit(tmp_path):
    kit = tmp_path / "kit"
    (kit / "keras").mkdir(parents=True)
    for name, text in {"train.py": "torch", "README.md": "pytorch readme", "features.py": "shared",
                       "train.npz": "data", "keras/train.py": "keras", "keras/README.md": "keras readme",
                       "keras/requirements.txt": "keras>=3"}.items():
        (kit / name).write_text(text)
    zip_dir(kit, tmp_path / "starter.zip")
    data = (tmp_path / "starter.zip").read_bytes()
    names = extract_starter(data, tmp_path / "torch")
    assert names == ["README.md", "features.py", "train.npz", "train.py"]
    assert (tmp_path / "torch" / "train.py").read_text() == "torch"
    names = extract_starter(data, tmp_path / "k", "keras")
    assert names == ["README.md", "features.py", "requirements.txt", "train.npz", "train.py"]
    assert (tmp_path / "k" / "train.py").read_text() == "keras"
    assert (tmp_path / "k" / "README.md").read_text() == "keras readme"


@pytest.mark.slow
@pytest.mark.parametrize("kit, epochs", [("digits", "2"), ("spoken_commands", "3")])
def test_keras_kit_reaches_the_leaderboard_well_above_chance(kit, epochs, tmp_path, tmp_path_factory):
    """Train the Keras kit briefly on the real public data, upload the ONNX file, a real worker scores it."""
    from tests.support import live

    if kit == "digits":
        from podium.challenges.digits.build import build
    else:
        from podium.challenges.spoken_commands.build import build
    bundle = build(tmp_path_factory.mktemp("bundle") / SLUGS[kit])
    result = _run(kit, tmp_path, True, "--epochs", epochs, keras=True, data=bundle / "data" / "train.npz",
                  timeout=1500)
    assert result.returncode == 0, result.stderr
    assert "podium checks: passed" in result.stdout
    settings = live.settings_for(tmp_path / "var")
    tokens = live.prepare_database(settings, [bundle], {"ada": "student"})
    stack = live.Stack(settings)
    try:
        stack.start_web()
        stack.start_worker()
        api = live.Api(stack.url, tokens["ada"])
        resp = api.submit(SLUGS[kit], (tmp_path / "model.onnx").read_bytes(), filename="model.onnx")
        assert resp.status_code == 202, resp.text
        sub = api.wait_finished(resp.json()["id"], 300)
        assert sub["status"] == "scored" and sub["format"] == "onnx", (sub, stack.log("worker"))
        assert sub["public_score"] > 0.3, sub  # ten classes: chance is 0.1
        board = live.Api(stack.url).get(f"/challenges/{SLUGS[kit]}/leaderboard").json()
        assert board["rows"][0]["user"] == "ada"
    finally:
        stack.stop()
