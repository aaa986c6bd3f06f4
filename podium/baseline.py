"""Baseline rows: each bundled challenge's starter model, trained once and scored by the real pipeline."""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from podium import admin
from podium.client import PodiumClient, wait_for
from podium.config import Settings

log = logging.getLogger(__name__)
BASELINE_USER = "baseline"


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
    model = out_dir / f"{bundle.name}-{_fingerprint(bundle)}{quick}.pt"
    if not model.exists():
        log.info("training the %s baseline with its starter kit ...", bundle.name)
        quick = ["--quick"] if os.environ.get("PODIUM_BASELINE_QUICK") else []  # tests: a few batches only
        subprocess.run([sys.executable, str(script), "--data", str(train), "--out", str(model), *quick],
                       cwd=bundle / "starter", check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return model


def ensure_user(settings: Settings) -> str:
    """The baseline account (an instructor, so no daily limit applies) and a fresh token for it."""
    try:
        admin.add_user(settings, BASELINE_USER, "instructor")
    except ValueError:
        pass
    return admin.new_token(settings, BASELINE_USER, "baseline")


def submit_baselines(settings: Settings, url: str, bundles: list[Path], out=None) -> dict[str, float]:
    """Train (once) and submit each bundle's baseline unless that exact model is already on the board."""
    client = PodiumClient(url, ensure_user(settings))
    scores = {}
    for bundle in bundles:
        model = train_baseline(bundle, settings.data_dir / "baselines")
        if model is None:
            continue
        slug = admin.slug_of(bundle)
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        done = [s for s in client.submissions(slug) 
                if s["user"] == BASELINE_USER and s["model_sha256"] == sha and s["status"] == "scored"]
        if done:
            scores[slug] = done[0]["public_score"]
            continue
        sub = wait_for(client, client.submit(model, slug)["id"], out=out or open("/dev/null", "w"))
        if sub["status"] == "scored":
            scores[slug] = sub["public_score"]
        else:
            log.warning("baseline for %s failed: %s", slug, sub["error"])
    return scores
