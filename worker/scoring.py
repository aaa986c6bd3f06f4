"""Turning a model's scores into results: metric on the public and private rows, per-class views."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from podium.core import metrics


@dataclass
class Evaluation:
    """Everything the leaderboard and the student pages need from one scoring pass."""

    public_score: float
    private_score: float
    n_public: int
    n_private: int
    public_per_class: list
    public_confusion: list


def evaluate(scores: np.ndarray, labels: np.ndarray, public: np.ndarray, metric: str, num_classes: int) -> Evaluation:
    """Score predictions (argmax of scores) on the public and the private rows.

    With no private rows (public_fraction 1.0) both scores are the score on the whole set.
    Per-class accuracy and the confusion matrix use the public rows only, so they leak nothing private.
    """
    pred = np.asarray(scores).argmax(axis=1)
    labels = np.asarray(labels)
    public = np.asarray(public, dtype=bool)
    private = ~public
    public_score = metrics.compute(metric, labels[public], pred[public], num_classes)
    private_score = metrics.compute(metric, labels[private], pred[private], num_classes) if private.any() else public_score
    return Evaluation(
        public_score=float(public_score),
        private_score=float(private_score),
        n_public=int(public.sum()),
        n_private=int(private.sum()),
        public_per_class=metrics.per_class_accuracy(labels[public], pred[public], num_classes),
        public_confusion=metrics.confusion_matrix(labels[public], pred[public], num_classes),
    )
