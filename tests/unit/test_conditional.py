"""The rendered-board cache: one render per ETag, viewers who miss together wait for it, old versions age out."""
from __future__ import annotations

import threading

from podium.server.conditional import Rendered


def test_viewers_missing_together_share_one_render():
    cache, calls, entered, go = Rendered(), [], threading.Event(), threading.Event()

    def render() -> bytes:
        calls.append(1)
        entered.set()
        go.wait(10)
        return b"board v1"

    got: list[bytes] = []
    first = threading.Thread(target=lambda: got.append(cache.get("v1", render)))
    first.start()
    entered.wait(10)  # the first viewer is rendering: the second must wait for it, not render again
    second = threading.Thread(target=lambda: got.append(cache.get("v1", render)))
    second.start()
    go.set()
    first.join(10)
    second.join(10)
    assert got == [b"board v1", b"board v1"] and len(calls) == 1
    assert cache.get("v1", lambda: b"never") == b"board v1"


def test_old_versions_age_out():
    cache = Rendered(size=2)
    for v in ("v1", "v2", "v3"):
        cache.get(v, lambda v=v: v.encode())
    assert cache.get("v1", lambda: b"again") == b"again" and cache.get("v3", lambda: b"x") == b"v3"
