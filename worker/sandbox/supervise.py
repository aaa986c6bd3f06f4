"""Watching one scoring child: its frames, its deadline, its output cap, its exit."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

from podium.worker.sandbox.protocol import FrameBuffer, ProtocolError


def supervise(pid: int, res_r: int, control: socket.socket, deadline: float, cap: int) -> dict:  # noqa: C901
    """Collect a child's frames until it ends; kill it at the deadline, past the cap, or if the pool hangs up.

    A child that sent its result is killed and left for reap(), so the reply is not delayed by its exit.
    """
    os.set_blocking(res_r, False)
    pidfd = os.pidfd_open(pid)
    frames = FrameBuffer(cap)
    out = {"stage": None, "killed": None, "result": None, "exited": False, "buffer": frames}
    poller = select.poll()
    poller.register(res_r, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    poller.register(control.fileno(), select.POLLIN)
    pipe_open = True

    def kill(why):
        if out["killed"] is None:
            out["killed"] = why
        for fn in (os.killpg, os.kill):
            try:
                fn(pid, signal.SIGKILL)
            except OSError:
                pass

    while pipe_open or not out["exited"]:
        left = deadline - time.monotonic()
        if left <= 0 and not out["exited"]:
            kill("time")
            left = 1.0
        for fd, _ev in poller.poll(max(left, 0.0) * 1000):
            if fd == res_r:
                try:
                    if frames.read_from(res_r) == 0:
                        pipe_open = False
                        poller.unregister(res_r)
                        continue
                    for header, payload in frames.frames():
                        _note(out, header, payload)
                except BlockingIOError:
                    continue
                except (ProtocolError, OSError) as exc:
                    kill("output" if "cap" in str(exc) else "protocol")
                    pipe_open = False
                    poller.unregister(res_r)
                    continue
                if out["result"] is not None:
                    kill("done")
                    pipe_open = False
                    out["exited"] = True  # reaped after the reply, off the student's path
            elif fd == pidfd:
                out["exited"] = True
                poller.unregister(pidfd)
            elif fd == control.fileno():
                if not control.recv(1, socket.MSG_PEEK):
                    kill("hangup")
                    os.waitpid(pid, 0)
                    raise SystemExit(0)
                poller.unregister(control.fileno())
    os.close(pidfd)
    out["pid"] = pid
    if out["result"] is None:
        reap(out)
    return out

def reap(out: dict) -> None:
    """Wait for the child of out; record its exit status (-signal or code) and peak memory."""
    _, status, usage = os.wait4(out["pid"], 0)
    out["status"] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    out["maxrss_mb"] = usage.ru_maxrss / 1024

def _note(out: dict, header: dict, payload: bytes) -> None:
    event = header.get("event")
    if event == "confined":
        # Only the first one is the child's own: it comes before any model byte is read.
        if out["stage"] is None:
            out["stage"] = "confined"
            out["layers"] = {str(k)[:40]: str(v)[:200] for k, v in dict(header.get("layers") or {}).items()}
            out["confine_s"] = header.get("confine_s")
    elif event == "stage" and out["stage"] is not None:
        out["stage"] = "forward" if header.get("stage") == "forward" else "load"
        out["load_s"] = header.get("load_s")
        out["model_device"] = str(header.get("device"))[:16]  # untrusted: the zygote accepts only known devices
    elif event == "cost" and out["stage"] is not None and "cost" not in out:
        out["cost"] = _cost(header)
    elif event in ("result", "error"):
        out["result"] = (header, payload)


FORMATS = ("torchscript", "exported_program", "onnx")


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62 else None


def _cost(header: dict) -> dict:
    """What the child measured, kept only where it is a plausible number (the child runs the student's code)."""
    fmt = header.get("format")
    error = header.get("error")
    return {"format": fmt if fmt in FORMATS else None, "params": _count(header.get("params")),
            "flops_per_input": _count(header.get("flops_per_input")),
            "error": str(error)[:300] if error is not None else None,
            "cost_s": header.get("cost_s")}
