"""CPU seconds of process trees, read from /proc: where a burst's core-seconds go."""
from __future__ import annotations

import os
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct children of pid (from every thread's /proc children list)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "podium.worker.sandbox.zygote" in cmd:
        return "zygote"
    if "bench.raw" in cmd:
        return "raw"
    return "other"


def sample(root_pid: int) -> dict[int, tuple[str, float, float]]:
    """{pid: (role, own CPU seconds, CPU seconds of its reaped children)} for root_pid and every descendant."""
    out, todo = {}, [(root_pid, "")]
    while todo:
        pid, parent_role = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state is field 3; utime, stime, cutime, cstime are fields 14-17.
        utime, stime, cutime, cstime = (int(v) / HZ for v in fields[11:15])
        # A scoring child is a fork of the zygote: same command line, so tell them apart by parent.
        role = "scoring child" if parent_role in ("zygote", "scoring child") else _role(pid)
        out[pid] = (role, utime + stime, cutime + cstime)
        todo += [(child, role) for child in children(pid)]
    return out


def worker_split(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds between two samples of a worker tree: the Celery processes, the zygote, its scoring children."""
    split = {"celery_s": 0.0, "zygote_s": 0.0, "scoring_children_s": 0.0}
    for pid, (role, own, reaped) in after.items():
        _, own0, reaped0 = before.get(pid, (role, 0.0, 0.0))
        if role == "zygote":
            split["zygote_s"] += own - own0
            split["scoring_children_s"] += reaped - reaped0
        elif role == "scoring child":
            split["scoring_children_s"] += own - own0
        else:
            split["celery_s"] += own - own0
    return split


def total(before: dict, after: dict) -> float:
    """CPU seconds of every process in the tree between two samples, reaped children included."""
    return sum(own + reaped - before.get(pid, ("", 0.0, 0.0))[1] - before.get(pid, ("", 0.0, 0.0))[2]
               for pid, (_, own, reaped) in after.items())
