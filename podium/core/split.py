"""The public/private leaderboard split of a test set."""

from __future__ import annotations

import numpy as np


def public_mask(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Return a boolean mask of the test rows scored on the public leaderboard."""
    y = np.asarray(y).reshape(-1)
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"public_fraction must be in [0, 1], got {fraction}")
    mask = np.zeros(y.shape[0], dtype=bool)
    if fraction >= 1.0:
        mask[:] = True
        return mask
    if fraction == 0.0 or y.size == 0:
        return mask
    rng = np.random.default_rng(int(seed))
    # Classes in sorted order and one permutation each, so the mask depends only on (y, fraction, seed).
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        # Python's round (halves to even), never below one public row per class.
        k = min(rows.size, max(1, int(round(fraction * rows.size))))
        mask[rows[rng.permutation(rows.size)[:k]]] = True
    return mask
