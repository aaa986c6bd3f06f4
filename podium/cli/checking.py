"""`podium check`: the grader's own checks, run locally on a challenge's public metadata and samples."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from podium.cli.client import ClientError, PodiumClient

SAMPLES = 16


def load_samples(path: Path | None, client: PodiumClient, slug: str) -> np.ndarray | None:
    """A few public inputs: from a local .npz, else the server's public samples, else None."""
    if path is not None:
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(npz["x"][:SAMPLES], dtype=np.float32)
    try:
        data = client.download(slug, "samples.npz")
    except ClientError:
        return None
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return np.asarray(npz["x"], dtype=np.float32)


def check_against_challenge(model: Path, slug: str, samples_path: str | None = None,
                            client: PodiumClient | None = None):
    """Run the grader's checks on a model for a challenge: a LocalCheck (problems, each with its fix, and costs)."""
    from podium.worker.localcheck import LocalCheck, check_model
    if not Path(model).is_file():
        return LocalCheck([f"{model}: no such file"])
    client = client or PodiumClient()
    meta = client.challenge(slug)
    samples = load_samples(Path(samples_path) if samples_path else None, client, slug)
    if samples is not None and list(samples.shape[1:]) != list(meta["input_shape"]):
        return LocalCheck([f"the samples have shape {list(samples.shape[1:])}, but the challenge expects "
                           f"{meta['input_shape']}"])
    return check_model(model, challenge=meta, samples=samples)
