"""Static model checks: every refusal, by the zip directory alone, without torch."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from podium.modelcheck import (
    EXPORT_RECIPE,
    ModelRejected,
    check_batch_independence,
    check_model_file,
    check_scores,
    inspect_archive,
)

MB = 2**20


def _zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _torchscript_like(path, extra=None):
    entries = {
        "model/data.pkl": b"\x80\x02.",
        "model/code/__torch__.py": b"class M(Module):\n  pass\n",
        "model/constants.pkl": b"\x80\x02).",
        "model/version": b"3\n",
    }
    entries.update(extra or {})
    return _zip(path, entries)


def _reason(path, **kw):
    kw.setdefault("max_bytes", 10 * MB)
    with pytest.raises(ModelRejected) as info:
        inspect_archive(path, **kw)
    assert info.value.reason == str(info.value)
    return info.value.reason


def test_torchscript_layout_passes(tmp_path):
    inspect_archive(_torchscript_like(tmp_path / "m.pt"), max_bytes=MB)


def test_empty_file(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(b"")
    assert "empty" in _reason(p)


def test_over_size_limit(tmp_path):
    p = _torchscript_like(tmp_path / "m.pt", {"model/data/0": os.urandom(2 * MB)})
    reason = _reason(p, max_bytes=1 * MB)
    assert "over the 1.0 MB limit" in reason


def test_garbage_is_not_a_zip(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(os.urandom(4096).replace(b"PK", b"pk"))
    reason = _reason(p)
    assert "not a zip" in reason and EXPORT_RECIPE in reason


def test_legacy_pickle_gets_the_export_recipe(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=2))
    reason = _reason(p)
    assert "pickle" in reason and EXPORT_RECIPE in reason


def test_new_style_torch_save_gets_the_export_recipe(tmp_path):
    # torch.save writes a zip too; it has data.pkl but no code/.
    p = _zip(tmp_path / "m.pt", {"m/data.pkl": b"\x80\x02}.", "m/data/0": b"\0" * 32, "m/version": b"3\n",
                                 "m/byteorder": b"little", "m/.data/serialization_id": b"1"})
    reason = _reason(p)
    assert "no code/" in reason and EXPORT_RECIPE in reason


def test_zip_without_data_pkl(tmp_path):
    p = _zip(tmp_path / "m.pt", {"readme.txt": b"hello", "weights.bin": b"\0" * 10})
    reason = _reason(p)
    assert "no data.pkl" in reason and EXPORT_RECIPE in reason


def test_nested_data_pkl_does_not_count(tmp_path):
    p = _zip(tmp_path / "m.pt", {"a/b/data.pkl": b"x", "a/b/code/x.py": b"x"})
    assert "no data.pkl" in _reason(p)


def test_total_uncompressed_over_bound(tmp_path):
    p = _torchscript_like(tmp_path / "m.pt", {"model/data/0": b"\0" * (3 * MB)})
    reason = _reason(p, max_uncompressed_bytes=2 * MB)
    assert "unpacks to 3.0 MB" in reason


def test_zip_bomb_by_total(tmp_path):
    # 64 MB of zeros deflates to ~64 KB; the directory alone gives it away.
    p = tmp_path / "bomb.pt"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/code/__torch__.py", b"x")
        with zf.open("model/data.pkl", "w", force_zip64=True) as f:
            block = b"\0" * MB
            for _ in range(64):
                f.write(block)
    assert os.path.getsize(p) < MB
    reason = _reason(p, max_uncompressed_bytes=32 * MB)
    assert "unpacks to" in reason


def test_zip_bomb_by_ratio(tmp_path):
    p = tmp_path / "bomb.pt"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/code/__torch__.py", b"x")
        zf.writestr("model/data.pkl", b"\0" * (40 * MB))
    assert "zip bomb" in _reason(p)


def test_absurd_entry_count(tmp_path):
    entries = {f"model/code/f{i}.py": b"" for i in range(10_001)}
    entries["model/data.pkl"] = b"x"
    assert "entries" in _reason(_zip(tmp_path / "m.pt", entries))


@pytest.mark.parametrize("name", ["../evil.py", "model/../../etc/passwd", "/abs/data.pkl"])
def test_unsafe_paths(tmp_path, name):
    p = _torchscript_like(tmp_path / "m.pt", {name: b"x"})
    assert "unsafe path" in _reason(p)


def test_check_scores_accepts_good_scores():
    check_scores(np.zeros((5, 3), np.float32), 5, 3)


@pytest.mark.parametrize(
    "scores, expected",
    [
        (np.zeros((7, 10), np.float32), "output shape [7, 10], expected [1000, 10]"),
        (np.zeros((1000,), np.float32), "output shape [1000], expected [1000, 10]"),
        (np.zeros((1000, 10), np.float64), "output dtype float64, expected float32 scores"),
        (np.full((1000, 10), np.nan, np.float32), "output contains NaN or Inf"),
        (np.full((1000, 10), np.inf, np.float32), "output contains NaN or Inf"),
        ((np.zeros((1000, 10), np.float32),), "forward() must return a single tensor, got tuple"),
    ],
)
def test_check_scores_refusals(scores, expected):
    with pytest.raises(ModelRejected) as info:
        check_scores(scores, 1000, 10)
    assert info.value.reason == expected


def test_batch_independence():
    a = np.random.default_rng(0).random((8, 3)).astype(np.float32)
    assert check_batch_independence(a, a + 1e-6) is None
    problem = check_batch_independence(a, a + 0.5)
    assert "batch size" in problem and "each sample on its own" in problem
    assert "any batch size" in check_batch_independence(a, a[:4])


def test_check_model_file_reports_static_problem(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    problems = check_model_file(p, challenge={"max_model_mb": 5, "input_shape": [1, 28, 28], "labels": list("abc")})
    assert len(problems) == 1 and EXPORT_RECIPE in problems[0]


def test_import_does_not_load_torch():
    code = "import sys, podium.modelcheck; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
