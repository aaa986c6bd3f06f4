"""A zygote whose worker dies goes too, at once, even in the middle of its warm-up (no orphan left with parent 1)."""
from __future__ import annotations

import subprocess
import sys

from tests.support import live
from tests.support.processes import assert_gone

# The parent the worker would be: start a zygote as ScoringPool does (its own session), print its pid, and die.
PARENT = """
import os, socket, subprocess, sys
ours, theirs = socket.socketpair()
zygote = subprocess.Popen([sys.executable, "-m", "podium.worker.sandbox.zygote", str(theirs.fileno()),
                           str(os.getpid())],
                          pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(sys.argv[1], "ab"), start_new_session=True)
print(zygote.pid, flush=True)
os._exit(0)
"""


def test_zygote_leaves_when_its_worker_dies_during_warm_up(tmp_path):
    parent = subprocess.run([sys.executable, "-c", PARENT, str(tmp_path / "zygote.log")], capture_output=True,
                            text=True, timeout=60, cwd=live.REPO)
    zygote = int(parent.stdout.split()[0])
    # The warm-up (torch, torch.export, ONNX Runtime, the probe) takes 5-25 s; the watch needs well under 1 s.
    assert_gone({zygote}, timeout_s=3)
