"""The rules on model output, the same for every format (the container checks are in podium.core.modelformat).

Shared by the web upload, the grader and `podium check`. Nothing here imports torch: the web process imports this.
"""

from __future__ import annotations

import numpy as np

BATCH_RTOL = 1e-3
BATCH_ATOL = 1e-4
# On a GPU, cuDNN runs convolutions in TF32 by default and picks other kernels per batch size: an honest model's
# scores differ by ~1e-3 there. A model that mixes samples differs by far more.
GPU_BATCH_RTOL = 1e-2
GPU_BATCH_ATOL = 1e-2


class ModelRejected(ValueError):
    """A model file or its output breaks the contract; .reason says what to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_scores(scores, n: int, num_classes: int) -> None:
    """Raise ModelRejected unless scores is a finite float32 array of shape [n, num_classes]."""
    if not isinstance(scores, np.ndarray):
        raise ModelRejected(f"forward() must return a single tensor, got {type(scores).__name__}")
    if scores.shape != (n, num_classes):
        got = ", ".join(str(d) for d in scores.shape)
        raise ModelRejected(f"output shape [{got}], expected [{n}, {num_classes}]")
    if scores.dtype != np.float32:
        raise ModelRejected(f"output dtype {scores.dtype}, expected float32 scores")
    if not np.isfinite(scores).all():
        raise ModelRejected("output contains NaN or Inf")


def check_batch_independence(whole: np.ndarray, one_by_one: np.ndarray, device: str = "cpu") -> str | None:
    """Return a problem (with the fix) when scores depend on how inputs are batched (on the device that ran them)."""
    if whole.shape != one_by_one.shape:
        return f"output shape depends on the batch size ({list(whole.shape)} vs {list(one_by_one.shape)}); forward() must work for any batch size B >= 1"
    rtol, atol = (GPU_BATCH_RTOL, GPU_BATCH_ATOL) if device.startswith("cuda") else (BATCH_RTOL, BATCH_ATOL)
    if np.allclose(whole, one_by_one, rtol=rtol, atol=atol):
        return None
    worst = float(np.max(np.abs(whole - one_by_one)))
    return (
        f"scores change with the batch size (max difference {worst:.3g}): forward() must treat each sample on "
        "its own; do not compute statistics across the batch (x.mean(0), F.batch_norm with training=True)"
    )
