"""`podium demo`, `serve`, `worker` and `beat` stop on SIGINT, SIGTERM and SIGHUP sent to their main process alone
(as `kill`, systemd, `timeout` or a closing terminal send them): every child goes within the shutdown grace
(web workers, pool children, zygotes, the baselines' training) and the port is free again."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.processes import alive, as_a_background_job, assert_gone, descendants

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
GRACE_S = 10  # PODIUM_SHUTDOWN_GRACE_S for these processes


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A migrated embedded database with a tiny challenge, shared by the verb tests (each starts its own process)."""
    root = tmp_path_factory.mktemp("signals")
    settings = live.settings_for(root / "var")
    live.prepare_database(settings, [write_tiny_bundle(root / "tiny")], {"prof": "instructor"})
    return settings


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """The verb in a session of its own, so the test's signal reaches its main process only; started as a script's
    background job, with SIGINT and SIGHUP ignored, the hardest case for stopping on them."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "podium.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=live.REPO,
                                preexec_fn=as_a_background_job)


def stop_with(proc: subprocess.Popen, sig: int, log: Path) -> None:
    """Send sig to the main process; it and everything it started must be gone within the grace."""
    tree = descendants(proc.pid) | {proc.pid}
    os.kill(proc.pid, sig)
    try:
        assert_gone(tree, GRACE_S + 10)
    finally:
        for pid in alive(tree):  # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
    proc.wait(5)
    text = log.read_text(errors="replace")
    # A clean stop logs no error either (an idle pool child leaving with status 1 was logged as one).
    assert not [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line], text[-3000:]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("verb", ["serve", "worker", "beat"])
def test_long_running_verb_stops_on_signal(verb, sig, prepared, tmp_path):
    env = live.env_for(prepared, PODIUM_SHUTDOWN_GRACE_S=GRACE_S)
    log = tmp_path / f"{verb}.log"
    port = live.free_port()
    args = {"serve": ["serve", "--port", str(port), "--workers", "2"],
            "worker": ["worker", "--queues", "podium", "--hostname", f"sig-{os.getpid()}@%h"],
            "beat": ["beat", "--interval", "1"]}[verb]
    proc = start(args, env, log)
    if verb == "serve":
        live.wait_until(lambda: not port_is_free(port) and len(descendants(proc.pid)) >= 2, 60, "web did not start")
    elif verb == "worker":  # pool child and its warm zygote
        live.wait_until(lambda: "ready." in log.read_text() and len(descendants(proc.pid)) >= 2, 90,
                        f"worker did not start: {log.read_text()[-2000:]}")
    else:
        live.wait_until(lambda: "beat: Starting" in log.read_text(), 60, f"beat did not start: {log.read_text()}")
    stop_with(proc, sig, log)
    assert port_is_free(port)


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_demo_stops_on_signal_while_training_a_baseline(sig, tmp_path):
    data_dir = tmp_path / "var"
    port = live.free_port()
    env = dict(os.environ, PODIUM_DATA_DIR=str(data_dir), PODIUM_DEMO_CHALLENGES="digits",
               PODIUM_SHUTDOWN_GRACE_S=str(GRACE_S), PYTHONUNBUFFERED="1")
    env.pop("PODIUM_DATABASE_URL", None)
    env.pop("PODIUM_BROKER_URL", None)
    env.pop("PODIUM_BASELINE_QUICK", None)  # a full training: still running when the signal comes
    log = tmp_path / "demo.log"
    proc = start(["demo", "--port", str(port)], env, log)

    def training() -> bool:
        return any("train.py" in _cmdline(p) for p in descendants(proc.pid))
    live.wait_until(lambda: "student token" in log.read_text() and training(), 240,
                    f"the demo never trained a baseline: {log.read_text()[-2000:]}", 0.5)
    live.wait_until(lambda: len(descendants(proc.pid)) >= 6, 60, "the demo's worker never warmed up", 0.5)
    stop_with(proc, sig, log)
    assert port_is_free(port)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
