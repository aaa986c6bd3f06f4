"""The seeded, class-stratified public/private split."""

import numpy as np
import pytest

from podium.core.split import public_mask


def test_stratified_counts():
    y = np.repeat(np.arange(10), 100)
    mask = public_mask(y, 0.3, 7)
    assert mask.dtype == bool and mask.shape == y.shape
    assert np.bincount(y[mask], minlength=10).tolist() == [30] * 10


def test_uneven_classes_round_per_class_and_keep_one():
    y = np.array([0] * 7 + [1] * 3 + [2] * 1 + [3] * 20)
    mask = public_mask(y, 0.3, 1)
    # round(2.1)=2, round(0.9)=1, round(0.3)=0 -> at least 1, round(6.0)=6
    assert np.bincount(y[mask], minlength=4).tolist() == [2, 1, 1, 6]


def test_full_and_zero_fraction():
    y = np.array([2, 0, 1, 1, 0])
    assert public_mask(y, 1.0, 3).all()
    assert not public_mask(y, 0.0, 3).any()
    assert public_mask(np.array([], dtype=np.int64), 0.5, 0).shape == (0,)


def test_seeded_and_deterministic():
    y = np.random.default_rng(0).integers(0, 5, 400)
    a, b = public_mask(y, 0.25, 11), public_mask(y.copy(), 0.25, 11)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, public_mask(y, 0.25, 12))


def test_pinned_mask():
    # Pinned so that a numpy upgrade that changes the split (and so every public score) fails loudly.
    y = np.arange(20) % 4
    assert np.flatnonzero(public_mask(y, 0.4, 7)).tolist() == PINNED


def test_rejects_bad_fraction():
    with pytest.raises(ValueError):
        public_mask(np.array([0, 1]), 1.5, 0)
    with pytest.raises(ValueError):
        public_mask(np.array([0, 1]), -0.1, 0)


PINNED = [0, 1, 5, 8, 10, 11, 15, 18]
