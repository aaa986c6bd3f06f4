"""Client verbs of the CLI: they talk to a Podium server over the REST API with a token.

One HTTP client for the CLI and the demo's baseline poster: a requests.Session whose adapter retries
(urllib3 Retry: connect and read errors, 502/503/504, Retry-After) with backoff. Every POST carries an
Idempotency-Key that the server honours (the same key within a day answers the first submission), so
an upload is retried safely too.
"""
from __future__ import annotations

import io
import os
import sys
import time
import uuid
import zipfile
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TIMEOUT = (5, 120)
RETRIES = 8  # backoff 0.5 s doubling up to 10 s: about a minute of retries, enough for a web restart
UPLOAD_PATIENCE_S = 180  # how long an upload keeps trying while the server is unreachable or answers 502-504
TOKEN_HELP = "set PODIUM_TOKEN to your API token (from `podium token NAME`, or your account page's API tokens)"


class ClientError(Exception):
    """The server answered with an error (or could not be reached)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def retrying_session(retries: int = RETRIES) -> requests.Session:
    """A Session that retries connect and read errors and 502/503/504 (honouring Retry-After), with backoff.

    POST is retried as well: the client sends every POST with an Idempotency-Key (see PodiumClient._call).
    """
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0, backoff_factor=0.5,
                  backoff_max=10, status_forcelist=(502, 503, 504), respect_retry_after_header=True,
                  allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST"}),
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PodiumClient:
    """A REST client reading PODIUM_URL and PODIUM_TOKEN, retrying what is safe to retry."""

    def __init__(self, url: str | None = None, token: str | None = None, retries: int = RETRIES):
        self.url = (url or os.environ.get("PODIUM_URL") or "http://127.0.0.1:5000").rstrip("/")
        self.token = token if token is not None else os.environ.get("PODIUM_TOKEN")
        self.http = retrying_session(retries)

    def _call(self, method: str, path: str, **kw):
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "POST":
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)  # what makes retrying a POST safe
        try:
            resp = self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            raise ClientError(f"cannot reach {self.url}: {exc.__class__.__name__} (retried {RETRIES} times)",
                              transient=True) from exc
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                message, code = err["message"], err["code"]
            except (ValueError, KeyError, TypeError):
                raise ClientError(f"HTTP {resp.status_code} from {path}", transient=resp.status_code in (502, 503, 504))
            if resp.status_code == 401 and "PODIUM_TOKEN" not in message:
                message = f"{message}; {TOKEN_HELP}"
            raise ClientError(f"{message} (HTTP {resp.status_code}, {code})", transient=resp.status_code in (502, 503, 504))
        return resp

    def challenge(self, slug: str) -> dict:
        """Public metadata of a challenge."""
        return self._call("GET", f"/challenges/{slug}").json()

    def submit(self, model: Path, slug: str, key: str | None = None) -> dict:
        """Upload a model (retried under one Idempotency-Key, so at most one submission is made); {"id", "status"}."""
        data = Path(model).read_bytes()  # in memory, so a retry sends the same bytes again
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        deadline = time.monotonic() + UPLOAD_PATIENCE_S
        while True:  # past the session's own retries too: the key makes every try the same upload
            try:
                return self._call("POST", f"/challenges/{slug}/submissions", headers=dict(headers),
                                  files={"model": (Path(model).name, data, "application/octet-stream")}).json()
            except ClientError as exc:
                if not exc.transient or time.monotonic() > deadline:
                    raise
                time.sleep(2)

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
        try:
            sub = client.submission(sub_id)
        except ClientError as exc:  # the server restarting for longer than the session's own retries
            if not exc.transient or time.monotonic() > deadline:
                raise
            time.sleep(2.0)
            continue
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
    head = (f"{'rank':>4}  {'user':<24} {'public':>8}" + (f" {'private':>8}" if private else "")
            + f" {'entries':>7} {'params':>11} {'MFLOPs':>9}  best at")
    lines = [f"{board['challenge']} ({'private, revealed' if board['revealed'] else 'public'})", head]
    for r in board["rows"]:
        line = f"{r['rank']:>4}  {r['user']:<24} {r['public_score']:>8.4f}"
        if private:
            p = r.get("private_score")
            line += f" {p:>8.4f}" if p is not None else f" {'':>8}"
        params, flops = r.get("params"), r.get("flops_per_input")
        cost = f" {params:>11,}" if params is not None else f" {'-':>11}"
        cost += f" {flops / 1e6:>9.3g}" if flops is not None else f" {'-':>9}"
        lines.append(line + f" {r['entries']:>7}{cost}  {r['best_at'][:16]}")
    if not board["rows"]:
        lines.append("  (no scored submissions yet)")
    return "\n".join(lines)


FRAMEWORKS = ("pytorch", "keras")


def extract_starter(data: bytes, dest: Path, framework: str = "pytorch") -> list[str]:
    """Unpack one framework's starter kit from the zip into dest; returns the file names written.

    The zip holds the PyTorch kit at its top and other frameworks' kits in folders named after them (keras/); a
    framework's own files replace the top-level ones of the same name, and the shared ones (train.npz) come along.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        for name in names:
            if name.startswith("/") or ".." in Path(name).parts:
                raise ClientError(f"unsafe path in starter kit: {name}")
        others = tuple(f"{f}/" for f in FRAMEWORKS if f != "pytorch")
        own = f"{framework}/"
        if framework != "pytorch" and not any(n.startswith(own) for n in names):
            raise ClientError(f"this challenge has no {framework} starter kit; try --framework pytorch")
        chosen: dict[str, str] = {}
        for name in names:
            if not name.startswith(others) and not name.endswith("/"):
                chosen[name] = name
        if framework != "pytorch":
            for name in names:
                if name.startswith(own) and not name.endswith("/"):
                    chosen.pop(name[len(own):], None)
                    chosen[name[len(own):]] = name
        dest.mkdir(parents=True, exist_ok=True)
        for target, name in chosen.items():
            path = dest / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(name))
        return sorted(chosen)
