"""Baseline rows: each bundled challenge's starter model, trained once and scored by the real pipeline."""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from podium.cli import admin
from podium.cli.client import ClientError, PodiumClient, wait_for
from podium.core.config import BASELINE_USER, Settings

log = logging.getLogger(__name__)
_training: set[subprocess.Popen] = set()  # baseline trainings in progress, so a stopping demo can end them


def _fingerprint(bundle: Path) -> str:
    """Changes when the starter code or the training data changes."""
    h = hashlib.sha256()
    for path in sorted([*(bundle / "starter").glob("*.py"), bundle / "data" / "train.npz"]):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def train_baseline(bundle: Path, out_dir: Path) -> Path | None:
    """Train the starter kit's model on the bundle's public data (cached by fingerprint); None without a kit."""
    script = bundle / "starter" / "train.py"
    train = bundle / "data" / "train.npz"
    if not script.is_file() or not train.is_file():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    quick = "-quick" if os.environ.get("PODIUM_BASELINE_QUICK") else ""
    model = out_dir / f"{bundle.name}-{_fingerprint(bundle)}{quick}.pt2"  # the kit exports torch.export by default
    if not model.exists():
        log.info("training the %s baseline with its starter kit ...", bundle.name)
        quick = ["--quick"] if os.environ.get("PODIUM_BASELINE_QUICK") else []  # tests: a few batches only
        proc = subprocess.Popen([sys.executable, str(script), "--data", str(train), "--out", str(model), *quick],
                                cwd=bundle / "starter", stdout=subprocess.DEVNULL, start_new_session=True)
        _training.add(proc)
        try:
            if proc.wait(timeout=3600) != 0:
                raise subprocess.CalledProcessError(proc.returncode, proc.args)
        finally:
            _training.discard(proc)
    return model


def stop_training() -> None:
    """Kill every baseline training still running (the demo is stopping)."""
    for proc in list(_training):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def ensure_user(settings: Settings) -> str:
    """The baseline account (an instructor, so no daily limit applies) and a fresh token for it."""
    try:
        admin.add_user(settings, BASELINE_USER, "instructor")
    except ValueError:
        pass
    return admin.new_token(settings, BASELINE_USER, "baseline")


def baseline_row(client: PodiumClient, slug: str, model: Path, out, give_up_s: float = 1800) -> float | None:
    """Make sure this exact model has a scored baseline row (submitting it once); its public score, None if it failed.

    Transient errors (the web restarting, a 503) are retried until give_up_s: the upload under one
    Idempotency-Key, so a retry never makes a second row; an earlier upload still in the queue is waited for.
    """
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    key = f"baseline-{sha[:32]}-{uuid.uuid4().hex[:16]}"
    deadline = time.monotonic() + give_up_s
    while True:
        try:
            mine = [s for s in client.submissions(slug) if s["user"] == BASELINE_USER and s["model_sha256"] == sha]
            done = [s for s in mine if s["status"] == "scored"]
            if done:
                return done[0]["public_score"]
            pending = [s for s in mine if s["status"] in ("queued", "running")]
            sub_id = pending[0]["id"] if pending else client.submit(model, slug, key=key)["id"]
            sub = wait_for(client, sub_id, out=out)
            if sub["status"] == "scored":
                return sub["public_score"]
            log.warning("baseline for %s failed: %s", slug, sub["error"])
            return None
        except ClientError as exc:
            if not exc.transient or time.monotonic() > deadline:
                raise
            log.warning("baseline for %s: %s; trying again", slug, exc)
            time.sleep(3)


def submit_baselines(settings: Settings, url: str, bundles: list[Path], out=None) -> dict[str, float]:
    """Train (once) and submit each bundle's baseline unless that exact model is already on the board."""
    client = PodiumClient(url, ensure_user(settings))
    scores = {}
    for bundle in bundles:
        model = train_baseline(bundle, settings.data_dir / "baselines")
        if model is None:
            continue
        slug = admin.slug_of(bundle)
        score = baseline_row(client, slug, model, out or open(os.devnull, "w"))
        if score is not None:
            scores[slug] = score
    return scores
