"""Build the spoken-commands bundle: synthesise keywords with espeak-ng, augment, and write log-mel arrays."""

import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np

from podium.challenges.spoken_commands import augment, synth
from podium.core import features
from podium.core.bundle.archive import building_dir, save_npz

HERE = Path(__file__).resolve().parent
FEATURES_SOURCE = Path(features.__file__).resolve()
SEED = 2024
N_TRAIN = 2500
N_TEST = 800
ACCENTS = (
    "en", "en-us", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)
# Heard in the background at a lower level; none of them is a keyword.
DISTRACTORS = (
    "seven", "house", "water", "people", "morning", "yellow", "table", "happy", "window", "bird",
    "marvin", "sheila", "follow", "learn", "visual", "forward", "tree", "wow", "bed", "zero",
)
TEST_VARIANT_SHARE = 0.25
SHARD = 50
AUGMENT = {"snr_db": (0.0, 25.0), "babble_db": (-18.0, -6.0), "babble_max": 2, "hum_p": 0.2, "peak_db": (-30.0, -1.0)}
SPEECH = {"rate": (120, 240), "pitch": (20, 80), "range": (20, 90), "volume": (70, 130)}


def load_spec() -> dict:
    """Return the parsed challenge.toml that ships with this challenge."""
    return tomllib.loads((HERE / "challenge.toml").read_text(encoding="utf-8"))


def split_voices(seed: int = SEED) -> tuple[list[str], list[str]]:
    """Return (train, test) voice names; a test voice's variant never appears in train (speaker-independent)."""
    names = synth.variants()
    rng = np.random.default_rng([seed, 0])
    order = [names[i] for i in rng.permutation(len(names))]
    n_test = max(1, int(round(len(names) * TEST_VARIANT_SHARE)))
    test_variants, train_variants = sorted(order[:n_test]), sorted(order[n_test:])
    train = [f"{a}+{v}" for a in ACCENTS for v in train_variants]
    test = [f"{a}+{v}" for a in ACCENTS for v in test_variants]
    return train, test


def plan(split: str, n: int, voices: list[str], labels: list[str], seed: int) -> list[dict]:
    """Return one recipe per clip: word, voice, prosody, distractors and a per-clip seed; classes balanced."""
    split_id = {"train": 1, "test": 2}[split]
    rng = np.random.default_rng([seed, split_id])
    label_ids = rng.permutation(np.arange(n) % len(labels))
    clips = []
    for i, label in enumerate(label_ids):
        speaker = {k: int(rng.integers(lo, hi + 1)) for k, (lo, hi) in SPEECH.items()}
        babble = [
            {"text": str(rng.choice(DISTRACTORS)), "voice": str(rng.choice(voices)),
             "rate": int(rng.integers(*SPEECH["rate"])), "pitch": int(rng.integers(*SPEECH["pitch"]))}
            for _ in range(int(rng.integers(0, AUGMENT["babble_max"] + 1)))
        ]
        clips.append({"label": int(label), "text": labels[label], "voice": str(rng.choice(voices)),
                      **speaker, "babble": babble, "seed": [seed, split_id, i]})
    return clips


def clip_seed(clip: dict) -> int:
    """Return the integer seed of one planned clip, for espeak-ng's generators."""
    return int(np.random.SeedSequence(clip["seed"]).generate_state(1)[0])


def render(engine: synth.Espeak, clip: dict, recipe: dict = features.DEFAULT_RECIPE) -> np.ndarray:
    """Synthesise and augment one planned clip; return its log-mel features."""
    return features.log_mel(render_audio(engine, clip, recipe), int(recipe["sample_rate"]), recipe)


def render_audio(engine: synth.Espeak, clip: dict, recipe: dict = features.DEFAULT_RECIPE) -> np.ndarray:
    """Synthesise and augment one planned clip; return the float32 waveform at the recipe's sample rate."""
    engine.seed(clip_seed(clip))
    rate = int(recipe["sample_rate"])
    n = int(round(rate * recipe["duration_s"]))

    def speak(text, voice, **prosody):
        audio = augment.trim_silence(engine.say(text, voice, **prosody))
        # Zero-pad to a whole number of resampling periods: exact lengths and FFT sizes with small factors.
        period = engine.sample_rate // np.gcd(engine.sample_rate, rate)
        padded = np.pad(audio, (0, -audio.size % period))
        out = features.resample(padded, engine.sample_rate, rate)
        return out[: int(round(audio.size * rate / engine.sample_rate))]

    word = speak(clip["text"], clip["voice"], rate=clip["rate"], pitch=clip["pitch"],
                 pitch_range=clip["range"], volume=clip["volume"])
    babble = [speak(b["text"], b["voice"], rate=b["rate"], pitch=b["pitch"]) for b in clip["babble"]]
    return augment.mix(word, np.random.default_rng(clip["seed"]), n, rate, babble, AUGMENT)


def render_shard(clips: list[dict], recipe: dict = features.DEFAULT_RECIPE) -> np.ndarray:
    """Render consecutive clips on a freshly loaded engine, so the result never depends on earlier shards."""
    engine = synth.fresh_engine(clip_seed(clips[0]))
    return np.stack([render(engine, clip, recipe) for clip in clips])


def _plain_signals() -> None:
    """In a pool worker: the default SIGTERM and no SIGINT, not the handlers forked from the caller.

    A stopping `podium demo` turns SIGTERM into an exception; inherited by a worker, it made the pool's
    terminate() wait forever on a worker stuck writing its result, so the demo never stopped mid-build.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _render_all(clips: list[dict], recipe: dict, workers: int) -> np.ndarray:
    # Fixed shards, whatever the worker count: the same seed gives the same bytes on 1 or 16 workers.
    shards = [(clips[i : i + SHARD], recipe) for i in range(0, len(clips), SHARD)]
    # fork works from any caller (spawn re-runs an unguarded __main__) and the children only run numpy and
    # espeak, never torch; but forking a process with other Python threads can copy a held lock.
    if workers <= 1 or threading.active_count() > 1:
        return np.concatenate([render_shard(*shard) for shard in shards])
    with multiprocessing.get_context("fork").Pool(workers, initializer=_plain_signals) as pool:
        return np.concatenate(pool.starmap(render_shard, shards, chunksize=1))


def build(dest: Path, seed: int = SEED, n_train: int = N_TRAIN, n_test: int = N_TEST, workers: int | None = None) -> Path:
    """Write the complete spoken-commands bundle at dest (replacing it) and return dest."""
    dest = Path(dest)
    spec = load_spec()
    recipe = features.validate_recipe(spec["features"])
    if list(spec["input_shape"]) != features.input_shape(recipe):
        raise ValueError(f"challenge.toml: input_shape {spec['input_shape']} != {features.input_shape(recipe)} from [features]")
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    started = time.monotonic()
    with building_dir(dest) as work:
        info = _write_bundle(work, spec, recipe, seed, n_train, n_test, workers)
        info["build_seconds"] = round(time.monotonic() - started, 2)
        (work / "build_info.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return dest


def _write_bundle(work: Path, spec: dict, recipe: dict, seed: int, n_train: int, n_test: int, workers: int) -> dict:
    train_voices, test_voices = split_voices(seed)
    hashes = {}
    for split, n, voices in (("train", n_train, train_voices), ("test", n_test, test_voices)):
        clips = plan(split, n, voices, list(spec["labels"]), seed)
        x = _render_all(clips, recipe, workers)
        y = np.array([c["label"] for c in clips], dtype=np.int64)
        hashes[split] = save_npz(work / "data" / f"{split}.npz", x, y)
    shutil.copyfile(HERE / "challenge.toml", work / "challenge.toml")
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    (work / "README.md").write_text(readme.rstrip() + "\n\n" + features.describe(recipe), encoding="utf-8")
    _copy_starter(work / "starter")
    return {
        "seed": seed, "counts": {"train": n_train, "test": n_test}, "sha256": hashes, "workers": workers,
        "augment": AUGMENT, "speech": SPEECH, "accents": list(ACCENTS),
        "train_voices": train_voices, "test_voices": test_voices,
    }


def _copy_starter(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(HERE / "starter", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.npz", "*.pt", "*.pt2", "*.onnx"))
    # Byte-identical copy, so the kit computes exactly the features the grader used.
    shutil.copyfile(FEATURES_SOURCE, target / "features.py")


if __name__ == "__main__":
    out = build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/bundles/spoken-commands"))
    print(json.dumps({k: v for k, v in json.loads((out / "build_info.json").read_text()).items() if "voices" not in k}, indent=1))
