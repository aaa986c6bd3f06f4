"""Failed-login time for an existing and an unknown username (median of 20, in-process app on SQLite)."""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.classroom import Browser, Classroom


def median_ms(room, username: str, n: int = 20) -> float:
    times = []
    for _ in range(n):
        browser = Browser(room.app)
        browser.csrf()
        t0 = time.perf_counter()
        browser.client.post("/login", data={"username": username, "password": "wrong-password-x",
                                            "csrf_token": browser.token})
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        room = Classroom(Path(tmp))
        from podium.server.throttle import limiter
        limiter.enabled = False  # the timing of the check itself, not of the 429 that throttling answers
        print(f"failed login, existing user: {median_ms(room, 'alice'):.1f} ms; "
              f"unknown user: {median_ms(room, 'nobody-here'):.1f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
