"""Scoring metrics: the one place where predictions become a number."""

from __future__ import annotations

import numpy as np


def _as_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Return both label arrays as 1-D int64, refusing a length mismatch."""
    t = np.asarray(y_true).reshape(-1).astype(np.int64, copy=False)
    p = np.asarray(y_pred).reshape(-1).astype(np.int64, copy=False)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} rows but y_pred has {p.size}")
    return t, p


def _num_classes(t: np.ndarray, p: np.ndarray, num_classes: int | None) -> int:
    """Return num_classes, or one more than the largest label seen."""
    if num_classes is not None:
        return int(num_classes)
    if t.size == 0:
        return 0
    return int(max(t.max(), p.max())) + 1


def confusion_matrix(y_true, y_pred, num_classes: int) -> list[list[int]]:
    """Return counts[i][j] of rows whose truth is i and prediction is j."""
    t, p = _as_labels(y_true, y_pred)
    n = int(num_classes)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ValueError(f"{name} has a label out of range [0, {n})")
    counts = np.bincount(t * n + p, minlength=n * n).reshape(n, n)
    return counts.tolist()


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the share of rows whose prediction equals the truth."""
    t, p = _as_labels(y_true, y_pred)
    if t.size == 0:
        raise ValueError("accuracy of zero rows is undefined")
    return float(np.mean(t == p))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Return the unweighted mean F1 over classes present in truth or prediction."""
    t, p = _as_labels(y_true, y_pred)
    if t.size == 0:
        raise ValueError("macro_f1 of zero rows is undefined")
    n = max(_num_classes(t, p, num_classes), int(max(t.max(), p.max())) + 1)
    cm = np.asarray(confusion_matrix(t, p, n), dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = (support + predicted) > 0
    # F1 = 2tp / (2tp + fp + fn) = 2tp / (support + predicted); denominator > 0 where present.
    f1 = 2.0 * tp[present] / (support[present] + predicted[present])
    return float(f1.mean())


def per_class_accuracy(y_true, y_pred, num_classes: int) -> list[float | None]:
    """Return recall per class (share of its rows predicted right); None for a class with no rows."""
    cm = np.asarray(confusion_matrix(y_true, y_pred, num_classes), dtype=np.int64)
    support = cm.sum(axis=1)
    return [float(cm[i, i] / support[i]) if support[i] else None for i in range(int(num_classes))]


METRICS = {"accuracy": accuracy, "macro_f1": macro_f1}


def compute(metric: str, y_true, y_pred, num_classes: int) -> float:
    """Return the named metric of predictions against the truth."""
    if metric == "accuracy":
        return accuracy(y_true, y_pred)
    if metric == "macro_f1":
        return macro_f1(y_true, y_pred, num_classes)
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
