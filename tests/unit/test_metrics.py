"""Metrics against scikit-learn, an independent implementation."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from podium.core import metrics

# sklearn warns when random data happen to hold one class; the comparison is still exact.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")


def random_cases(count=300, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = int(rng.integers(1, 12))
        n = int(rng.integers(1, 80))
        y_true = rng.integers(0, k, n)
        # Mix of random guesses and mostly-right predictions, so scores span [0, 1].
        y_pred = np.where(rng.random(n) < rng.random(), y_true, rng.integers(0, k, n))
        yield y_true, y_pred, k


def test_accuracy_matches_sklearn():
    for y_true, y_pred, _ in random_cases():
        assert metrics.accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)


def test_macro_f1_matches_sklearn_on_present_labels():
    for y_true, y_pred, k in random_cases():
        present = np.union1d(y_true, y_pred)
        expected = f1_score(y_true, y_pred, average="macro", labels=present, zero_division=0)
        assert metrics.macro_f1(y_true, y_pred, k) == pytest.approx(expected, abs=1e-12)
        assert metrics.macro_f1(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_confusion_matrix_and_per_class_accuracy_match_sklearn():
    for y_true, y_pred, k in random_cases(100, seed=1):
        labels = np.arange(k)
        assert metrics.confusion_matrix(y_true, y_pred, k) == sk_confusion_matrix(y_true, y_pred, labels=labels).tolist()
        recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        per_class = metrics.per_class_accuracy(y_true, y_pred, k)
        for c in range(k):
            if (y_true == c).any():
                assert per_class[c] == pytest.approx(recall[c], abs=1e-12)
            else:
                assert per_class[c] is None


def test_edge_cases():
    # Perfect, all wrong, a single row, a single class.
    assert metrics.accuracy([3, 1, 2], [3, 1, 2]) == 1.0
    assert metrics.macro_f1([3, 1, 2], [3, 1, 2], 10) == 1.0
    assert metrics.accuracy([0, 0], [1, 1]) == 0.0
    assert metrics.macro_f1([0, 0], [1, 1], 2) == 0.0
    assert metrics.accuracy([4], [4]) == 1.0
    assert metrics.macro_f1([0, 0, 0], [0, 0, 0], 1) == 1.0
    # A class predicted but never true counts (F1 0); a class absent from both is skipped.
    expected = f1_score([0, 0, 1], [0, 2, 1], average="macro", labels=[0, 1, 2], zero_division=0)
    assert metrics.macro_f1([0, 0, 1], [0, 2, 1], 5) == pytest.approx(expected)
    # Column vectors and other integer dtypes are accepted.
    assert metrics.accuracy(np.array([[1], [2]], dtype=np.int32), np.array([1, 0], dtype=np.uint8)) == 0.5


def test_refusals():
    with pytest.raises(ValueError, match="rows"):
        metrics.accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="zero rows"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="zero rows"):
        metrics.macro_f1([], [], 3)
    with pytest.raises(ValueError, match="out of range"):
        metrics.confusion_matrix([0, 5], [0, 1], 3)


def test_compute_dispatches_and_refuses_unknown_metric():
    y_true, y_pred = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    assert metrics.compute("accuracy", y_true, y_pred, 3) == metrics.accuracy(y_true, y_pred)
    assert metrics.compute("macro_f1", y_true, y_pred, 3) == metrics.macro_f1(y_true, y_pred, 3)
    assert set(metrics.METRICS) == {"accuracy", "macro_f1"}
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        metrics.compute("auc", y_true, y_pred, 3)
