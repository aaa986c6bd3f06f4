"""Test inputs held by the zygote: x only (never y), decoded once per test set."""

from __future__ import annotations

import collections
import time

import numpy as np

CACHE_SIZE = 4


class InputsCache:
    """Test inputs (x only, never y) decoded once and kept by key, least recently used dropped."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.items: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()

    def get(self, key: str, path: str) -> tuple[np.ndarray, float]:
        """Return (x, seconds spent loading) for key, loading x from the npz at path if needed."""
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key], 0.0
        t0 = time.perf_counter()
        with np.load(path, allow_pickle=False) as npz:
            x = np.ascontiguousarray(npz["x"], dtype=np.float32)  # "y" is never read
        self.items[key] = x
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return x, time.perf_counter() - t0
