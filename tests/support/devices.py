"""Which device the sandbox tests score on: PODIUM_TEST_DEVICE (cpu by default; scripts/gpu-check sets cuda)."""
from __future__ import annotations

import os


def pool_options() -> dict:
    """ScoringPool keywords for the sandbox tests: the device, and the operator's opt-in on a host (gVisor) that
    lacks a confinement layer, which scripts/gpu-check passes on as PODIUM_SANDBOX_ALLOW_INCOMPLETE."""
    return {"device": sandbox_device(),
            "allow_incomplete": os.environ.get("PODIUM_SANDBOX_ALLOW_INCOMPLETE", "") in ("1", "true", "yes")}


def sandbox_device() -> str:
    """The device asked of ScoringPool in the sandbox and red-team tests: "cpu" or "cuda"."""
    return os.environ.get("PODIUM_TEST_DEVICE", "cpu")


def scored_on() -> str:
    """The device name a scoring child reports for sandbox_device()."""
    return "cpu" if sandbox_device() == "cpu" else "cuda:0"


def sandbox_pool():
    """A scoring pool on the test device, one thread, not yet started (use it with `with`)."""
    from podium.worker.sandbox import ScoringPool
    return ScoringPool(threads=1, **pool_options())
