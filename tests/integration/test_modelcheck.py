"""Static model checks: every refusal, by the zip directory or the protobuf's top level alone, without torch."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from podium.core.modelcheck import ModelRejected, check_batch_independence, check_scores
from podium.core.modelformat import (
    ALL_RECIPES,
    EXPORTED_PROGRAM_RECIPE,
    KERAS_RECIPE,
    ONNX_RECIPE,
    TORCHSCRIPT_RECIPE,
    inspect_model,
)
from podium.worker.localcheck import check_model_file

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
        inspect_model(path, **kw)
    assert info.value.reason == str(info.value)
    return info.value.reason


def test_torchscript_layout_passes(tmp_path):
    assert inspect_model(_torchscript_like(tmp_path / "m.pt"), max_bytes=MB) == "torchscript"


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
    assert "neither a zip archive nor an ONNX protobuf" in reason and ALL_RECIPES in reason


def test_legacy_pickle_gets_the_export_recipe(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=2))
    reason = _reason(p)
    assert "pickle" in reason and EXPORTED_PROGRAM_RECIPE in reason and ONNX_RECIPE in reason


def test_new_style_torch_save_gets_the_export_recipe(tmp_path):
    # torch.save writes a zip too; it has data.pkl but no code/.
    p = _zip(tmp_path / "m.pt", {"m/data.pkl": b"\x80\x02}.", "m/data/0": b"\0" * 32, "m/version": b"3\n",
                                 "m/byteorder": b"little", "m/.data/serialization_id": b"1"})
    reason = _reason(p)
    assert "no code/" in reason and EXPORTED_PROGRAM_RECIPE in reason and TORCHSCRIPT_RECIPE in reason


def test_zip_without_data_pkl(tmp_path):
    p = _zip(tmp_path / "m.pt", {"readme.txt": b"hello", "weights.bin": b"\0" * 10})
    reason = _reason(p)
    assert "no data.pkl" in reason and "no archive_format" in reason and ALL_RECIPES in reason


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
    # TF32 convolutions on a GPU: kernel-sized differences pass there, not on the CPU; mixing samples fails on both.
    assert check_batch_independence(a, a * 1.004, "cuda:0") is None and check_batch_independence(a, a * 1.004)
    assert check_batch_independence(a, a + 0.5, "cuda:0")


def test_check_model_file_reports_static_problem(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    problems = check_model_file(p, challenge={"max_model_mb": 5, "input_shape": [1, 28, 28], "labels": list("abc")})
    assert len(problems) == 1 and EXPORTED_PROGRAM_RECIPE in problems[0]


def test_import_does_not_load_torch():
    code = ("import sys, podium.core.modelcheck, podium.core.modelformat; "
            "assert not {'torch', 'onnx', 'onnxruntime'} & set(sys.modules), 'a model library was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


# ------------------------------------------------------------------ torch.export archives and ONNX, by their bytes

def _pt2_like(path, extra=None, root="model", marker=b"pt2"):
    entries = {
        f"{root}/archive_format": marker,
        f"{root}/archive_version": b"0",
        f"{root}/models/model.json": b"{}",
        f"{root}/data/weights/model_weights_config.json": b'{"config": {}}',
        f"{root}/data/weights/weight_0": b"\0" * 16,
        f"{root}/data/sample_inputs/model.pt": b"PK",
        f"{root}/byteorder": b"little",
    }
    entries.update(extra or {})
    return _zip(path, entries)


def test_pt2_layout_is_an_exported_program(tmp_path):
    assert inspect_model(_pt2_like(tmp_path / "m.bin"), max_bytes=MB) == "exported_program"


def test_format_comes_from_the_bytes_never_the_name(tmp_path):
    # A .pt2 named .onnx and a TorchScript archive named .pt2 are what their bytes say.
    assert inspect_model(_pt2_like(tmp_path / "model.onnx"), max_bytes=MB) == "exported_program"
    assert inspect_model(_torchscript_like(tmp_path / "model.pt2"), max_bytes=MB) == "torchscript"
    data = (tmp_path / "model.onnx").read_bytes()
    assert inspect_model(data, max_bytes=MB) == "exported_program"


@pytest.mark.parametrize("extra, expected", [
    ({"model/data/aotinductor/model/model.so": b"\x7fELF"}, "AOTInductor package"),
    ({"model/data/aotinductor/model/model.wrapper.cpp": b"int main(){}"}, "AOTInductor package"),
    ({"model/models/second.json": b"{}"}, "holds 2 programs"),
    ({"model/data/constants/opaque_obj_0": b"\x80\x04."}, "pickled Python objects"),
    ({"model/data/constants/custom_obj_0": b"\x80\x04."}, "pickled Python objects"),
])
def test_pt2_refusals(tmp_path, extra, expected):
    reason = _reason(_pt2_like(tmp_path / "m.pt2", extra))
    assert expected in reason and EXPORTED_PROGRAM_RECIPE in reason


def test_pt2_without_a_program(tmp_path):
    p = _zip(tmp_path / "m.pt2", {"model/archive_format": b"pt2", "model/archive_version": b"0"})
    assert "holds no program" in _reason(p)


def test_pt2_with_a_false_marker(tmp_path):
    assert "not pt2" in _reason(_pt2_like(tmp_path / "m.pt2", marker=b"zip"))


def test_pt2_bomb_is_refused_by_the_directory(tmp_path):
    p = tmp_path / "bomb.pt2"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/archive_format", b"pt2")
        zf.writestr("model/models/model.json", b"{}")
        zf.writestr("model/data/weights/weight_0", b"\0" * (40 * MB))
    assert "zip bomb" in _reason(p)


def _onnx_bytes(*fields: bytes) -> bytes:
    return b"".join(fields)


def _len_field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


IR_VERSION = b"\x08\x0a"            # field 1, varint 10
GRAPH = _len_field(7, b"\x0a\x00")  # field 7: a (nearly) empty GraphProto
OPSET = _len_field(8, b"\x10\x11")  # field 8: opset 17


def test_onnx_top_level_is_recognised(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(_onnx_bytes(IR_VERSION, _len_field(2, b"pytorch"), _len_field(3, b"2.13"), GRAPH, OPSET))
    assert inspect_model(p, max_bytes=MB) == "onnx"


@pytest.mark.parametrize("data", [
    _onnx_bytes(_len_field(2, b"pytorch"), IR_VERSION, GRAPH),     # ir_version not first
    _onnx_bytes(IR_VERSION, OPSET),                                 # no graph
    _onnx_bytes(IR_VERSION, GRAPH, GRAPH),                          # two graphs
    _onnx_bytes(IR_VERSION, GRAPH, b"\x3a\x7f"),                    # a length past the end
    _onnx_bytes(IR_VERSION, GRAPH, b"\x98\x06\x01"),                # field 99: not a ModelProto field
    _onnx_bytes(b"\x08\xff\xff\xff\xff\x0f", GRAPH),                # absurd ir_version
    b"\x08",                                                        # cut short
])
def test_not_quite_onnx_is_refused(tmp_path, data):
    p = tmp_path / "m.onnx"
    p.write_bytes(data)
    assert "not a model Podium recognises" in _reason(p)


def test_keras_files_get_the_keras_recipe(tmp_path):
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert KERAS_RECIPE in _reason(h5)
    keras_zip = _zip(tmp_path / "m.keras", {"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b"x"})
    reason = _reason(keras_zip)
    assert ".keras archive" in reason and KERAS_RECIPE in reason


def test_real_exports_are_recognised(tmp_path):
    # The real thing from torch 2.13 and its ONNX exporter, by the bytes alone.
    from tests.support.models import exported_bytes, onnx_bytes, scripted_bytes, small_cnn

    model = small_cnn(seed=2, in_shape=(1, 8, 8), num_classes=3)
    assert inspect_model(exported_bytes(model, (1, 8, 8)), max_bytes=MB) == "exported_program"
    assert inspect_model(onnx_bytes(model, (1, 8, 8)), max_bytes=MB) == "onnx"
    assert inspect_model(scripted_bytes(model), max_bytes=MB) == "torchscript"
