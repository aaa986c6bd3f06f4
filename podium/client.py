"""Client verbs of the CLI: they talk to a Podium server over the REST API with a token."""
from __future__ import annotations

import io
import os
import sys
import time
import zipfile
from pathlib import Path

import requests

TIMEOUT = (5, 120)


class ClientError(Exception):
    """The server answered with an error (or could not be reached)."""


class PodiumClient:
    """A thin REST client reading PODIUM_URL and PODIUM_TOKEN."""

    def __init__(self, url: str | None = None, token: str | None = None):
        self.url = (url or os.environ.get("PODIUM_URL") or "http://127.0.0.1:5000").rstrip("/")
        self.token = token if token is not None else os.environ.get("PODIUM_TOKEN")
        self.http = requests.Session()

    def _call(self, method: str, path: str, **kw):
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach {self.url}: {exc.__class__.__name__}") from exc
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                raise ClientError(f"{err['message']} (HTTP {resp.status_code}, {err['code']})")
            except (ValueError, KeyError, TypeError):
                raise ClientError(f"HTTP {resp.status_code} from {path}")
        return resp

    def challenge(self, slug: str) -> dict:
        """Public metadata of a challenge."""
        return self._call("GET", f"/challenges/{slug}").json()

    def submit(self, model: Path, slug: str) -> dict:
        """Upload a model; returns {"id", "status"}."""
        with open(model, "rb") as f:
            return self._call("POST", f"/challenges/{slug}/submissions",
                              files={"model": (Path(model).name, f, "application/octet-stream")}).json()

    def submission(self, sub_id: int) -> dict:
        """One submission."""
        return self._call("GET", f"/submissions/{sub_id}").json()

    def submissions(self, slug: str) -> list[dict]:
        """The caller's submissions to a challenge (all of them for instructors)."""
        return self._call("GET", f"/challenges/{slug}/submissions").json()

    def leaderboard(self, slug: str) -> dict:
        """The leaderboard JSON."""
        return self._call("GET", f"/challenges/{slug}/leaderboard").json()

    def download(self, slug: str, what: str) -> bytes:
        """starter.zip or train.npz."""
        return self._call("GET", f"/challenges/{slug}/{what}").content


def wait_for(client: PodiumClient, sub_id: int, timeout_s: float = 900, out=sys.stdout) -> dict:
    """Poll until the submission is scored or failed, printing each status change."""
    last, deadline, delay = None, time.monotonic() + timeout_s, 0.2
    while True:
        sub = client.submission(sub_id)
        if sub["status"] != last:
            print(f"  {sub['status']}", file=out, flush=True)
            last = sub["status"]
        if sub["status"] in ("scored", "failed"):
            return sub
        if time.monotonic() > deadline:
            raise ClientError(f"submission {sub_id} still {sub['status']} after {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def format_leaderboard(board: dict) -> str:
    """A plain-text table of a leaderboard."""
    private = any("private_score" in r for r in board["rows"])
    head = f"{'rank':>4}  {'user':<24} {'public':>8}" + (f" {'private':>8}" if private else "") + f" {'entries':>7}  best at"
    lines = [f"{board['challenge']} ({'private, revealed' if board['revealed'] else 'public'})", head]
    for r in board["rows"]:
        line = f"{r['rank']:>4}  {r['user']:<24} {r['public_score']:>8.4f}"
        if private:
            p = r.get("private_score")
            line += f" {p:>8.4f}" if p is not None else f" {'':>8}"
        lines.append(line + f" {r['entries']:>7}  {r['best_at'][:16]}")
    if not board["rows"]:
        lines.append("  (no scored submissions yet)")
    return "\n".join(lines)


def extract_starter(data: bytes, dest: Path) -> list[str]:
    """Unpack a starter kit zip into dest; returns the file names."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.startswith("/") or ".." in Path(name).parts:
                raise ClientError(f"unsafe path in starter kit: {name}")
        zf.extractall(dest)
        return zf.namelist()
