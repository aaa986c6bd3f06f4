"""Health probe: confine a throw-away child and check from inside what it can no longer do."""

from __future__ import annotations

import json
import os
import socket

from podium.worker.sandbox.confine import LAYERS, confine


def _blocked(fn) -> bool:
    try:
        fn()
    except OSError:
        return True
    return False


def _tries(parent: int) -> dict[str, bool]:
    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    return {
        "read_file": _blocked(lambda: open("/etc/passwd", "rb").close()),
        "write_file": _blocked(lambda: open("/tmp/.podium-probe", "wb").close()),
        "tcp_socket": _blocked(lambda: socket.socket().close()),
        "unix_socket": _blocked(lambda: socket.socket(socket.AF_UNIX).close()),
        "fork": _blocked(fork),
        "signal_parent": _blocked(lambda: os.kill(parent, 0)),
    }


def run_probe(*, device: str) -> dict:
    """Fork a confined child and return {"layers": {layer: status}, "blocked": {action: bool}, "ok": bool}."""
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            layers = confine(keep_fds={w}, memory_limit_mb=512, cpu_s=10)
            report = {"layers": layers, "blocked": _tries(parent)}
            os.write(w, json.dumps(report).encode() + b"\n")
            # Last, because if it works this process is gone: the parent then reads no second line.
            blocked = _blocked(lambda: os.execv("/bin/true", ["true"]))
            os.write(w, json.dumps({"exec": blocked}).encode() + b"\n")
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    lines = b"".join(chunks).splitlines()
    try:
        report = json.loads(lines[0])
        report["blocked"]["exec"] = bool(len(lines) > 1 and json.loads(lines[1]).get("exec"))
    except (ValueError, IndexError, KeyError, AttributeError):
        report = {"layers": {name: "unavailable: probe child failed" for name in LAYERS}, "blocked": {}}
    report["ok"] = all(report["blocked"].values()) and bool(report["blocked"]) and all(
        v.startswith(("ok", "skipped")) for v in report["layers"].values())
    return report
