"""Challenge bundles: challenge.toml, the three data forms, every refusal, npz and zip writing."""

import datetime as dt
import hashlib
import json
import os
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from podium.core.bundle.archive import save_npz, zip_dir
from podium.core.bundle.data import load_bundle
from podium.core.bundle.spec import BundleError, parse_spec
from podium.core.features import input_shape as recipe_shape
from podium.core.features import log_mel, read_wav
from podium.core.images import read_png, write_png

LABELS = ["a", "b", "c"]
BASE = {
    "slug": "toy-shapes",
    "title": "Toy shapes",
    "summary": "Three tiny classes.",
    "kind": "image",
    "labels": LABELS,
    "input_shape": [1, 4, 4],
}
RECIPE = {"sample_rate": 8000, "n_mels": 8, "n_fft": 256, "fmax": 4000, "duration_s": 0.1}


def toml_text(fields: dict, features: dict | None = None) -> str:
    """Write a flat dict (plus an optional [features] table) as TOML."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dt.datetime, int, float)):
            return v.isoformat() if isinstance(v, dt.datetime) else repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in fields.items()]
    if features is not None:
        lines += ["", "[features]"] + [f"{k} = {value(v)}" for k, v in features.items()]
    return "\n".join(lines) + "\n"


def arrays(n_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class).astype(np.int64)
    x = rng.random((y.size, 1, 4, 4)).astype(np.float32)
    return x, y


def make_bundle(root: Path, fields=None, test=None, train="default", readme="# Toy\n") -> Path:
    """Write a valid npz bundle, with any part overridden."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "challenge.toml").write_text(toml_text(fields if fields is not None else BASE))
    if readme is not None:
        (root / "README.md").write_text(readme)
    (root / "data").mkdir(exist_ok=True)
    x, y = test if test is not None else arrays()
    np.savez(root / "data" / "test.npz", x=x, y=y)
    if train == "default":
        train = arrays(3, seed=1)
    if train is not None:
        np.savez(root / "data" / "train.npz", x=train[0], y=train[1])
    return root


def snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def refuse(root: Path, match: str):
    before = snapshot(root)
    with pytest.raises(BundleError, match=match):
        load_bundle(root)
    assert snapshot(root) == before, "loading a bundle must not write anything"


# ---------------------------------------------------------------- challenge.toml

def test_parse_spec_defaults_and_metadata():
    spec = parse_spec(toml_text(BASE))
    assert spec.slug == "toy-shapes" and spec.labels == ("a", "b", "c") and spec.num_classes == 3
    assert spec.input_shape == (1, 4, 4) and spec.metric == "accuracy"
    assert (spec.public_fraction, spec.split_seed, spec.daily_limit) == (0.3, 0, 10)
    assert (spec.max_model_mb, spec.time_limit_s, spec.memory_limit_mb) == (20.0, 60.0, 2048)
    assert spec.opens_at is None and spec.deadline is None and spec.feature_recipe is None


def test_parse_spec_dates_native_and_strings():
    text = toml_text({**BASE, "opens_at": "2026-09-01T08:00:00Z"}) + "deadline = 2026-12-01T23:59:00+01:00\n"
    spec = parse_spec(text)
    assert spec.opens_at == dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)
    assert spec.deadline.utcoffset() == dt.timedelta(hours=1)


def test_parse_spec_all_keys():
    fields = {**BASE, "metric": "macro_f1", "public_fraction": 1.0, "split_seed": 3, "daily_limit": 5,
              "max_model_mb": 2.5, "time_limit_s": 30, "memory_limit_mb": 512}
    spec = parse_spec(toml_text(fields))
    assert (spec.metric, spec.public_fraction, spec.split_seed, spec.daily_limit) == ("macro_f1", 1.0, 3, 5)
    assert (spec.max_model_mb, spec.time_limit_s, spec.memory_limit_mb) == (2.5, 30.0, 512)


def test_parse_spec_spectrogram_recipe():
    shape = recipe_shape(RECIPE)
    spec = parse_spec(toml_text({**BASE, "kind": "spectrogram", "input_shape": shape}, RECIPE))
    assert spec.feature_recipe["n_mels"] == 8 and spec.feature_recipe["sample_rate"] == 8000


def without(key):
    return {k: v for k, v in BASE.items() if k != key}


SPEC_REFUSALS = [
    (without("labels"), "challenge.toml: key 'labels' is missing"),
    (without("slug"), "key 'slug' is missing"),
    (without("title"), "key 'title' is missing"),
    (without("input_shape"), "key 'input_shape' is missing"),
    ({**BASE, "colour": "red"}, "unknown key 'colour'"),
    ({**BASE, "slug": "Toy Shapes"}, "key 'slug'"),
    ({**BASE, "slug": "x"}, "key 'slug'"),
    ({**BASE, "slug": 12}, "key 'slug' must be a string"),
    ({**BASE, "title": ""}, "key 'title' must not be empty"),
    ({**BASE, "title": "T" * 201}, "key 'title' has 201 characters, at most 200 are allowed"),
    ({**BASE, "kind": "video"}, "key 'kind'"),
    ({**BASE, "labels": []}, "key 'labels'"),
    ({**BASE, "labels": ["a", "b", "a"]}, "key 'labels' has duplicates: a"),
    ({**BASE, "labels": ["a", 2]}, "key 'labels'"),
    ({**BASE, "labels": "abc"}, "key 'labels'"),
    ({**BASE, "input_shape": [1, 0, 4]}, "key 'input_shape'"),
    ({**BASE, "input_shape": "1x4x4"}, "key 'input_shape'"),
    ({**BASE, "input_shape": [1, 4.0, 4]}, "key 'input_shape'"),
    ({**BASE, "metric": "auc"}, "key 'metric' is unknown: 'auc'"),
    ({**BASE, "public_fraction": 0}, "key 'public_fraction'"),
    ({**BASE, "public_fraction": 1.5}, "key 'public_fraction'"),
    ({**BASE, "public_fraction": "0.3"}, "key 'public_fraction'"),
    ({**BASE, "split_seed": -1}, "key 'split_seed'"),
    ({**BASE, "split_seed": 1.5}, "key 'split_seed'"),
    ({**BASE, "opens_at": "2026-09-01T08:00:00"}, "key 'opens_at' has no UTC offset"),
    ({**BASE, "deadline": "next friday"}, "key 'deadline' is not an ISO 8601"),
    ({**BASE, "deadline": 5}, "key 'deadline'"),
    ({**BASE, "opens_at": "2026-09-02T00:00:00+00:00", "deadline": "2026-09-01T00:00:00+00:00"},
     "key 'deadline' .* is not after 'opens_at'"),
    ({**BASE, "daily_limit": 0}, "key 'daily_limit' must be a positive integer"),
    ({**BASE, "daily_limit": True}, "key 'daily_limit'"),
    ({**BASE, "daily_limit": 2.5}, "key 'daily_limit'"),
    ({**BASE, "max_model_mb": -1}, "key 'max_model_mb' must be a positive number"),
    ({**BASE, "time_limit_s": "60"}, "key 'time_limit_s'"),
    ({**BASE, "time_limit_s": float("inf")}, "key 'time_limit_s'"),
    ({**BASE, "memory_limit_mb": 1.5}, "key 'memory_limit_mb'"),
    ({**BASE, "kind": "spectrogram", "input_shape": [1, 8, 11]}, "needs a \\[features\\] table"),
]


@pytest.mark.parametrize("fields,match", SPEC_REFUSALS)
def test_parse_spec_refusals(fields, match):
    with pytest.raises(BundleError, match=match):
        parse_spec(toml_text(fields))


def test_parse_spec_refuses_bad_recipes_and_bad_toml():
    with pytest.raises(BundleError, match="key 'opens_at' must be an ISO 8601 date-time with offset, got 2026-01-01$"):
        parse_spec(toml_text(BASE) + "opens_at = 2026-01-01\n")
    with pytest.raises(BundleError, match="not valid TOML"):
        parse_spec("slug = \n")
    spectro = {**BASE, "kind": "spectrogram", "input_shape": recipe_shape(RECIPE)}
    with pytest.raises(BundleError, match=r"key 'input_shape' is \[1, 9, 11\] but the \[features\] recipe gives \[1, 8, 11\]"):
        parse_spec(toml_text({**spectro, "input_shape": [1, 9, 11]}, RECIPE))
    with pytest.raises(BundleError, match="unknown key 'hop'"):
        parse_spec(toml_text(spectro, {**RECIPE, "hop": 3}))
    with pytest.raises(BundleError, match="features.n_mels"):
        parse_spec(toml_text(spectro, {**RECIPE, "n_mels": -8}))
    with pytest.raises(BundleError, match="only for kind"):
        parse_spec(toml_text(BASE, RECIPE))


# ---------------------------------------------------------------- npz form

def test_load_npz_bundle(tmp_path):
    root = make_bundle(tmp_path / "b")
    (root / "starter").mkdir()
    bundle = load_bundle(root)
    x, y = arrays()
    assert bundle.spec.slug == "toy-shapes" and bundle.spec.readme == "# Toy\n"
    assert bundle.test_x.dtype == np.float32 and bundle.test_y.dtype == np.int64
    assert np.array_equal(bundle.test_x, x) and np.array_equal(bundle.test_y, y)
    assert bundle.train_x.shape == (9, 1, 4, 4) and bundle.train_y.shape == (9,)
    assert bundle.starter_dir == root / "starter" and bundle.root == root


def test_train_and_readme_optional_and_safe_casts(tmp_path):
    x, y = arrays()
    root = make_bundle(tmp_path / "b", test=(x.astype(np.float64), y.astype(np.uint8)), train=None, readme=None)
    bundle = load_bundle(root)
    assert bundle.train_x is None and bundle.train_y is None and bundle.starter_dir is None
    assert bundle.spec.readme == ""
    assert bundle.test_x.dtype == np.float32 and bundle.test_y.dtype == np.int64
    assert np.array_equal(bundle.test_y, y)


def test_missing_files(tmp_path):
    refuse(tmp_path, "challenge.toml: file is missing")
    root = make_bundle(tmp_path / "b")
    (root / "data" / "test.npz").unlink()
    refuse(root, "data/test.npz: file is missing")


def bad(x=None, y=None):
    gx, gy = arrays()
    return (gx if x is None else x, gy if y is None else y)


GX, GY = arrays()
DATA_REFUSALS = [
    (bad(x=GX[:, :, :, :3]), r"data/test.npz: x has shape \[12, 1, 4, 3\], expected \[N, 1, 4, 4\]"),
    (bad(x=GX[:, 0]), r"data/test.npz: x has shape \[12, 4, 4\], expected \[N, 1, 4, 4\]"),
    (bad(y=GY.reshape(-1, 1)), r"data/test.npz: y has shape \[12, 1\], expected \[N\]"),
    (bad(y=np.where(GY == 2, 12, GY)), r"data/test.npz: y has label 12 out of range \[0, 3\)"),
    (bad(y=GY - 1), r"data/test.npz: y has label -1 out of range \[0, 3\)"),
    (bad(y=GY.astype(np.float64)), "data/test.npz: y has dtype float64, expected integer labels"),
    (bad(y=GY.astype(bool)), "data/test.npz: y has dtype bool"),
    (bad(x=GX.astype(np.complex64)), "data/test.npz: x has dtype complex64, expected float32"),
    (bad(x=GX.astype(np.int64)), "data/test.npz: x has dtype int64, expected float32"),
    (bad(x=np.where(np.arange(GX.size).reshape(GX.shape) == 40, np.nan, GX).astype(np.float32)),
     r"data/test.npz: x has 1 NaN or Inf values \(first in row 2\)"),
    (bad(x=np.where(GX > 0.9, np.inf, GX).astype(np.float32)), "data/test.npz: x has .* NaN or Inf"),
    (bad(x=np.full(GX.shape, 1e39)), "data/test.npz: x has .* NaN or Inf"),  # float64 too big for float32
    ((GX[:0], GY[:0]), "data/test.npz: has zero rows"),
    (bad(y=GY[:5]), "data/test.npz: x has 12 rows but y has 5"),
    (bad(x=(GX * 255).astype(np.uint8)), r"data/test.npz: x has values in \[0, 25\d\], expected pixels scaled to \[0, 1\]"),
    ((GX[[0, 4, 8]], GY[[0, 4, 8]]), "the private split is empty"),
]


@pytest.mark.parametrize("test,match", DATA_REFUSALS)
def test_npz_refusals(tmp_path, test, match):
    refuse(make_bundle(tmp_path / "b", test=test), match)


def test_train_split_refusals_name_train(tmp_path):
    x, y = arrays(3)
    refuse(make_bundle(tmp_path / "b", train=(x, y + 1)), r"data/train.npz: y has label 3 out of range")


def test_npz_key_and_format_refusals(tmp_path):
    root = make_bundle(tmp_path / "b")
    x, y = arrays()
    np.savez(root / "data" / "test.npz", x=x, labels=y)
    refuse(root, "data/test.npz: array 'y' is missing")
    (root / "data" / "test.npz").write_bytes(b"not a zip at all")
    refuse(root, "data/test.npz: not a readable .npz file")
    np.save(root / "data" / "test.npy", x)
    (root / "data" / "test.npy").rename(root / "data" / "test.npz")
    refuse(root, "data/test.npz: not an .npz archive")
    # Python objects inside an npz would need unpickling: refused, never loaded.
    np.savez(root / "data" / "test.npz", x=np.array([object()] * 3, dtype=object), y=y)
    refuse(root, "data/test.npz: array 'x' holds Python objects")


def test_both_forms_refused(tmp_path):
    root = make_bundle(tmp_path / "b")
    (root / "data" / "test" / "a").mkdir(parents=True)
    refuse(root, "data/test.npz: data/test/ exists too")


def test_bad_readme_and_toml_in_bundle(tmp_path):
    root = make_bundle(tmp_path / "b")
    (root / "README.md").write_bytes(b"\xff\xfe bad")
    refuse(root, "README.md: not UTF-8")
    root = make_bundle(tmp_path / "c", fields={**BASE, "metric": "auc"})
    refuse(root, "challenge.toml: key 'metric' is unknown")


# ---------------------------------------------------------------- PNG form

def png_bundle(root: Path, per_class=3) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a PNG-folder bundle; return it with the expected arrays in load order."""
    make_bundle(root)
    (root / "data" / "test.npz").unlink()
    (root / "data" / "train.npz").unlink()
    rng = np.random.default_rng(5)
    xs, ys = [], []
    for split in ("test", "train"):
        for label_index, label in enumerate(LABELS):
            folder = root / "data" / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = (rng.integers(0, 256, (1, 4, 4)) / 255.0).astype(np.float32)
                write_png(folder / f"{i:03d}.png", img)
                if split == "test":
                    xs.append(img)
                    ys.append(label_index)
    (root / "data" / "test" / ".DS_Store").write_bytes(b"junk")  # zip debris is ignored
    return root, np.stack(xs), np.array(ys)


def test_load_png_bundle(tmp_path):
    root, x, y = png_bundle(tmp_path / "b")
    bundle = load_bundle(root)
    assert bundle.test_x.dtype == np.float32 and bundle.test_x.shape == (9, 1, 4, 4)
    assert np.array_equal(bundle.test_x, x) and np.array_equal(bundle.test_y, y)
    assert bundle.train_x.shape == (9, 1, 4, 4) and sorted(bundle.train_y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_read_png_modes(tmp_path):
    from PIL import Image

    sixteen = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "g16.png")
    got = read_png(tmp_path / "g16.png")
    assert got.shape == (1, 2, 2) and got.dtype == np.float32
    assert np.allclose(got[0], sixteen / 65535.0)
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert read_png(tmp_path / "rgb.png").tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    assert read_png(tmp_path / "rgb.png", channels=3).shape == (3, 2, 2)
    Image.fromarray(rgb).save(tmp_path / "photo.png", format="JPEG")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png(tmp_path / "photo.png")


def test_png_refusals(tmp_path):
    root, _, _ = png_bundle(tmp_path / "b")
    test = root / "data" / "test"
    (test / "d").mkdir()
    refuse(root, "data/test/d: unknown label folder")
    (test / "d").rmdir()
    (test / "notes.txt").write_text("hi")
    refuse(root, "data/test/notes.txt: expected only folders named after labels")
    (test / "notes.txt").unlink()
    (test / "b" / "extra.jpg").write_bytes(b"\xff\xd8")
    refuse(root, "data/test/b/extra.jpg: unsupported file")
    (test / "b" / "extra.jpg").unlink()
    write_png(test / "b" / "big.png", np.zeros((1, 5, 4)))
    refuse(root, r"data/test/b/big.png: gives an input of shape \[1, 5, 4\], expected \[1, 4, 4\]")
    (test / "b" / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    refuse(root, "data/test/b/big.png: cannot be read")
    (test / "b" / "big.png").unlink()
    for f in (test / "c").iterdir():
        f.unlink()
    refuse(root, "data/test/c: empty label folder")


def test_empty_png_test_folder(tmp_path):
    root, _, _ = png_bundle(tmp_path / "b")
    import shutil

    for label in LABELS:
        shutil.rmtree(root / "data" / "test" / label)
    refuse(root, "data/test: has no label folders")


# ---------------------------------------------------------------- WAV form

def write_wav(path: Path, freq: float, rate: int = 8000, seconds: float = 0.1):
    t = np.arange(int(rate * seconds)) / rate
    pcm = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def wav_bundle(root: Path) -> Path:
    fields = {**BASE, "kind": "spectrogram", "input_shape": recipe_shape(RECIPE), "public_fraction": 0.5}
    root.mkdir(parents=True)
    (root / "challenge.toml").write_text(toml_text(fields, RECIPE))
    for label_index, label in enumerate(LABELS):
        folder = root / "data" / "test" / label
        folder.mkdir(parents=True)
        for i in range(2):
            # A clip at 16 kHz too: the recipe resamples it.
            write_wav(folder / f"{i}.wav", 300 + 900 * label_index + 50 * i, rate=8000 if i == 0 else 16000)
    return root


def test_load_wav_bundle(tmp_path):
    root = wav_bundle(tmp_path / "b")
    bundle = load_bundle(root)
    assert bundle.spec.kind == "spectrogram"
    assert bundle.test_x.shape == (6, *recipe_shape(RECIPE)) and bundle.test_x.dtype == np.float32
    assert bundle.test_y.tolist() == [0, 0, 1, 1, 2, 2]
    audio, rate = read_wav(root / "data" / "test" / "b" / "1.wav")
    assert np.array_equal(bundle.test_x[3], log_mel(audio, rate, bundle.spec.feature_recipe))
    # Distinct tones give distinct features: the labels follow the folders.
    assert np.argmax(bundle.test_x[0, 0].mean(axis=1)) < np.argmax(bundle.test_x[4, 0].mean(axis=1))


def test_wav_refusals(tmp_path):
    root = wav_bundle(tmp_path / "b")
    (root / "data" / "test" / "a" / "0.wav").write_bytes(b"RIFF....WAVEjunk")
    refuse(root, "data/test/a/0.wav: cannot be read")
    # WAV files need a feature recipe, which only a spectrogram challenge has.
    (root / "challenge.toml").write_text(toml_text({**BASE, "input_shape": recipe_shape(RECIPE)}))
    refuse(root, "WAV data needs a \\[features\\] table")
    root = wav_bundle(tmp_path / "c")
    write_png(root / "data" / "test" / "c" / "x.png", np.zeros((1, 4, 4)))
    refuse(root, "mixes .png and .wav")


# ---------------------------------------------------------------- writing

def test_save_npz_roundtrip_hash_and_determinism(tmp_path):
    x, y = arrays()
    digest = save_npz(tmp_path / "t.npz", x, y)
    assert digest == hashlib.sha256((tmp_path / "t.npz").read_bytes()).hexdigest()
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["x", "y"]
        assert np.array_equal(data["x"], x) and np.array_equal(data["y"], y)
    assert save_npz(tmp_path / "u.npz", x.copy(), y.copy()) == digest
    assert save_npz(tmp_path / "t.npz", x, y + 0 * y) == digest  # overwrite in place
    assert save_npz(tmp_path / "v.npz", x[:-1], y[:-1]) != digest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_zip_dir_is_deterministic(tmp_path):
    src = tmp_path / "starter"
    (src / "sub" / "__pycache__").mkdir(parents=True)
    (src / "train.py").write_text("print('hi')\n")
    (src / "sub" / "features.py").write_text("X = 1\n")
    (src / "sub" / "__pycache__" / "features.cpython-311.pyc").write_bytes(b"\0")
    zip_dir(src, tmp_path / "one.zip")
    os.utime(src / "train.py", (1_000_000_000, 1_000_000_000))
    zip_dir(src, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert zf.namelist() == ["sub/features.py", "train.py"]
        assert zf.read("train.py") == b"print('hi')\n"


def test_ranking_key_defaults_to_score_and_accepts_pareto_only():
    assert parse_spec(toml_text(BASE)).ranking == "score"
    assert parse_spec(toml_text({**BASE, "ranking": "pareto"})).ranking == "pareto"
    with pytest.raises(BundleError, match="key 'ranking' must be one of score, pareto, got 'cost'"):
        parse_spec(toml_text({**BASE, "ranking": "cost"}))


def test_budgets_are_optional_positive_numbers():
    spec = parse_spec(toml_text(BASE))
    assert (spec.max_params, spec.max_mflops) == (None, None)
    spec = parse_spec(toml_text({**BASE, "max_params": 50_000, "max_mflops": 2.5}))
    assert (spec.max_params, spec.max_mflops) == (50_000, 2.5)
    with pytest.raises(BundleError, match="key 'max_params' must be a positive integer, got 1.5"):
        parse_spec(toml_text({**BASE, "max_params": 1.5}))
    with pytest.raises(BundleError, match="key 'max_mflops' must be a positive number, got -1"):
        parse_spec(toml_text({**BASE, "max_mflops": -1}))


def test_float64_inputs_are_cast_with_a_note(tmp_path):
    import numpy as np

    from podium.core.bundle.archive import save_npz
    from podium.core.bundle.data import load_bundle
    from tests.support.bundles import write_tiny_bundle
    root = write_tiny_bundle(tmp_path / "b")
    with np.load(root / "data" / "test.npz") as npz:
        save_npz(root / "data" / "test.npz", npz["x"].astype(np.float64), npz["y"])
    bundle = load_bundle(root)
    assert bundle.test_x.dtype == np.float32
    assert bundle.notes == ["data/test.npz: x is float64; cast to float32, the dtype models receive "
                            "(save it as float32 to silence this)"]
    assert load_bundle(write_tiny_bundle(tmp_path / "plain")).notes == []
