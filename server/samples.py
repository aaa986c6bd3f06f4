"""A few public inputs per challenge, for `podium check` (no labels, never test data)."""
from __future__ import annotations

import io

import numpy as np

SAMPLES = 16


def public_samples(store, challenge) -> io.BytesIO:
    """The first training inputs as an .npz with key x; random inputs of the right shape when there is no training data."""
    if challenge.train_sha256:
        with np.load(store.local_path(challenge.train_sha256), allow_pickle=False) as npz:
            x = np.asarray(npz["x"][:SAMPLES], dtype=np.float32)
    else:
        x = np.random.default_rng(0).random((SAMPLES, *challenge.input_shape), dtype=np.float32)
    buf = io.BytesIO()
    np.savez(buf, x=x)
    buf.seek(0)
    return buf
