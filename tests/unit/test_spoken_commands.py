"""Tests for the spoken-commands bundle builder: validity, reproducibility, speaker independence, shared features."""

import hashlib
import importlib.util
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from podium.challenges.spoken_commands import build as sc
from podium.challenges.spoken_commands import synth
from podium.core import features
from podium.core.bundle.data import load_bundle
from podium.core.bundle.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SMALL = {"n_train": 60, "n_test": 40}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return sc.build(tmp_path_factory.mktemp("sc") / "spoken-commands", workers=2, **SMALL)


def test_bundle_is_valid_for_the_bundle_loader(bundle):
    loaded = load_bundle(bundle)
    spec = loaded.spec
    assert spec.slug == "spoken-commands" and spec.kind == "spectrogram"
    assert list(spec.labels) == LABELS
    assert list(spec.input_shape) == features.input_shape(spec.feature_recipe) == [1, 40, 101]
    assert (spec.metric, spec.public_fraction, spec.split_seed) == ("accuracy", 0.3, 11)
    assert (spec.daily_limit, spec.max_model_mb, spec.time_limit_s, spec.memory_limit_mb) == (20, 20, 60, 2048)
    assert features.validate_recipe(spec.feature_recipe) == features.DEFAULT_RECIPE
    assert loaded.test_x.shape == (40, 1, 40, 101) and loaded.train_x.shape == (60, 1, 40, 101)
    assert loaded.test_x.dtype == np.float32 and np.isfinite(loaded.test_x).all()
    # Classes are balanced in both splits.
    assert np.bincount(loaded.train_y, minlength=10).tolist() == [6] * 10
    assert np.bincount(loaded.test_y, minlength=10).tolist() == [4] * 10


def test_readme_publishes_the_recipe(bundle):
    text = (bundle / "README.md").read_text()
    assert features.describe(features.DEFAULT_RECIPE) in text
    assert text.startswith("# Spoken commands")


def test_same_seed_same_bytes_any_worker_count(bundle, tmp_path):
    again = sc.build(tmp_path / "again", workers=1, **SMALL)
    for split in ("test", "train"):
        assert _sha(again / "data" / f"{split}.npz") == _sha(bundle / "data" / f"{split}.npz")
    other = sc.build(tmp_path / "other", seed=sc.SEED + 1, workers=1, n_train=10, n_test=10)
    with np.load(other / "data" / "test.npz") as a, np.load(bundle / "data" / "test.npz") as b:
        assert not np.array_equal(a["x"], b["x"][:10])


def test_test_voices_never_speak_in_train(bundle):
    info = json.loads((bundle / "build_info.json").read_text())
    train, test = set(info["train_voices"]), set(info["test_voices"])
    assert train and test and not train & test
    # Stronger: no voice variant (the timbre) is shared, whatever the accent.
    assert not {v.split("+")[1] for v in train} & {v.split("+")[1] for v in test}
    assert train | test == {f"{a}+{v}" for a in sc.ACCENTS for v in synth.variants()}
    for split, voices in (("train", train), ("test", test)):
        for clip in sc.plan(split, 200, sorted(voices), LABELS, sc.SEED):
            assert clip["voice"] in voices
            assert all(b["voice"] in voices for b in clip["babble"])


def test_starter_kit_carries_a_byte_identical_features_copy(bundle):
    copy = bundle / "starter" / "features.py"
    assert copy.read_bytes() == (ROOT / "podium" / "core" / "features.py").read_bytes()
    assert (bundle / "starter" / "train.py").read_bytes() == (ROOT / "challenges/spoken_commands/starter/train.py").read_bytes()


def test_builder_and_starter_copy_give_the_same_features(bundle):
    spec = importlib.util.spec_from_file_location("kit_features", bundle / "starter" / "features.py")
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    clips = sc.plan("test", SMALL["n_test"], sc.split_voices()[1], LABELS, sc.SEED)
    # The first clip of a shard is rendered on a fresh engine, so it can be re-rendered alone.
    audio = sc.render_audio(synth.fresh_engine(sc.clip_seed(clips[0])), clips[0])
    with np.load(bundle / "data" / "test.npz") as data:
        stored = data["x"][0]
    assert kit.log_mel(audio, 16000).tobytes() == stored.tobytes()
    assert features.log_mel(audio, 16000).tobytes() == stored.tobytes()


def test_synthesis_does_not_depend_on_what_was_said_before():
    clips = sc.plan("train", 6, sc.split_voices()[0], LABELS, sc.SEED)
    forward = sc.render_shard(clips[:1])
    engine = synth.fresh_engine(1)
    for clip in clips[1:]:
        sc.render(engine, clip)
    assert np.array_equal(sc.render_shard(clips[:1]), forward)


def test_clips_are_one_second_and_not_silent():
    clips = sc.plan("train", 4, sc.split_voices()[0], LABELS, sc.SEED)
    engine = synth.fresh_engine(0)
    for clip in clips:
        audio = sc.render_audio(engine, clip)
        assert audio.shape == (16000,) and audio.dtype == np.float32
        assert 0.02 < np.abs(audio).max() <= 1.0


def test_unknown_voice_is_refused():
    with pytest.raises(ValueError, match="no voice"):
        synth.fresh_engine(0).say("yes", "en+no-such-variant")


def test_challenge_toml_matches_the_recipe_and_parser():
    text = (ROOT / "challenges/spoken_commands/challenge.toml").read_text()
    raw = tomllib.loads(text)
    spec = parse_spec(text)
    assert spec.feature_recipe == raw["features"]
    assert list(spec.input_shape) == features.input_shape(raw["features"])
