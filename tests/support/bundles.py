"""Small challenge bundles written on the fly for tests."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def write_tiny_bundle(root: Path, slug: str = "tiny", n: int = 120, classes: int = 3, public_fraction: float = 0.5,
                      extra_toml: str = "", seed: int = 0) -> Path:
    """A small, fast challenge: inputs [1, 8, 8], labels decided by which third of the image is bright."""
    from podium.core.bundle.archive import save_npz
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.2
    for i, label in enumerate(y):
        x[i, 0, :, label * 8 // classes:(label + 1) * 8 // classes] += 0.8
    root.mkdir(parents=True, exist_ok=True)
    labels = ", ".join(f'"c{i}"' for i in range(classes))
    (root / "challenge.toml").write_text(textwrap.dedent(f"""\
        slug = "{slug}"
        title = "Tiny {slug}"
        summary = "A small synthetic challenge for tests"
        kind = "image"
        labels = [{labels}]
        input_shape = [1, 8, 8]
        public_fraction = {public_fraction}
        split_seed = 3
        daily_limit = 1000
        time_limit_s = 20
        memory_limit_mb = 2048
        """) + extra_toml)
    (root / "data").mkdir(exist_ok=True)
    save_npz(root / "data" / "test.npz", x, y.astype(np.int64))
    save_npz(root / "data" / "train.npz", x, y.astype(np.int64))
    return root
