"""Which processes a test started, and proof that none outlives its stack."""
from __future__ import annotations

import os
import signal

from tests.support import live


def as_a_background_job() -> None:
    """Popen's preexec_fn: start the child with SIGINT and SIGHUP ignored, as `nohup cmd &` in a script leaves them.

    CI may run the suite so; a process must still stop on those signals then, not only from a terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def descendants(pid: int) -> set[int]:
    """Every live process below pid (read from /proc), including ones in other sessions such as the zygote."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` still running (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            pass
    return out


def assert_gone(pids: set[int], timeout_s: float = 15) -> None:
    """Every process in pids ends within timeout_s."""
    live.wait_until(lambda: not alive(pids), timeout_s, f"processes outlived their worker: {sorted(alive(pids))}", 0.2)


def stop_leaving_nothing(stack: live.Stack) -> None:
    """Stop every process of the stack and check that none of them, nor anything they started, lives on."""
    tree = set().union(*(descendants(p.pid) | {p.pid} for p in stack.procs.values()))
    stack.stop()
    assert_gone(tree)
