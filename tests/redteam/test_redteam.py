"""The red-team corpus through the sandbox API: every case contained, nothing written, the zygote unharmed."""

import io
import os
import re
import secrets
import signal
import socket
import time

import numpy as np
import pytest
import torch

from podium.core.modelformat import KERAS_RECIPE, RECIPES
from redteam.corpus import FromFileTheft, SetstateTheft, build_corpus, labels_of, write_targets
from tests.support.devices import sandbox_pool

TIME_LIMIT_S = 2.0
MEMORY_MB = 512


class Honest(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


def _listeners(root):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix_path = str(root / "listener.sock")
    unix.bind(unix_path)
    unix.listen()
    for s in (tcp, udp, unix):
        s.setblocking(False)
    return tcp, udp, unix, unix_path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam")
    token = "rt" + secrets.token_hex(6)
    tcp, udp, unix, unix_path = _listeners(root)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0podium-{token}")
    abstract.listen()
    abstract.setblocking(False)
    received = []
    old_handler = signal.signal(signal.SIGUSR1, lambda *a: received.append(a[0]))
    os.environ["PODIUM_REDTEAM_SECRET"] = token  # the worker's environment must not reach the child
    targets = write_targets(root, token=token, tcp_port=tcp.getsockname()[1], udp_port=udp.getsockname()[1],
                            unix_path=unix_path)
    cases = build_corpus(root / "corpus", targets)
    pool = sandbox_pool()
    pool.start()
    mtimes = {d: os.stat(d).st_mtime_ns for d in (targets.canary_dir, os.path.dirname(targets.labels_path), root)}
    try:
        yield dict(root=root, targets=targets, cases=cases, pool=pool, sockets=(tcp, udp, unix, abstract),
                   received=received, mtimes=mtimes)
    finally:
        pool.close()
        signal.signal(signal.SIGUSR1, old_handler)
        os.environ.pop("PODIUM_REDTEAM_SECRET", None)
        for s in (tcp, udp, unix, abstract):
            s.close()


def _without_recipes(reason: str) -> str:
    """The reason less Podium's own export recipes: what is left came from the model, and must stay short."""
    for recipe in (*RECIPES.values(), KERAS_RECIPE):
        reason = reason.replace(recipe, "")
    return reason


def _run(pool, t, path):
    return pool.run(model_path=path, inputs_path=t.inputs_path, inputs_key="redteam", num_classes=t.num_classes,
                    time_limit_s=TIME_LIMIT_S, memory_limit_mb=MEMORY_MB)


def _children_of(pid):
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _written(t):
    """Every trace an attack could have left, by the token in its name or the victim's bytes."""
    found = []
    for d in ("/tmp", "/dev/shm", "/", t.canary_dir, os.getcwd(), os.path.expanduser("~")):
        try:
            found += [f"{d}/{n}" for n in os.listdir(d) if t.token in n]
        except OSError:
            pass
    found += [f"{t.canary_dir}/{n}" for n in os.listdir(t.canary_dir)]
    with open(t.victim_path, "rb") as f:
        if f.read() != b"UNTOUCHED":
            found.append(t.victim_path)
    return sorted(set(found))


def test_corpus_is_contained(env, capfd):
    pool, t = env["pool"], env["targets"]
    labels = labels_of(t)
    zygote = pool.health()["pid"]
    problems, table = [], []
    t0 = time.monotonic()
    for case in env["cases"]:
        start = time.monotonic()
        r = _run(pool, t, case.path)
        table.append(f"{case.name:32s} {time.monotonic() - start:5.2f}s  {r.reason}")
        if case.expect is None:
            if r.ok and float(np.mean(r.scores.argmax(1) == labels)) > 0.5:
                problems.append(f"{case.name}: scored {np.mean(r.scores.argmax(1) == labels):.2f}, labels stolen")
        elif r.ok:
            problems.append(f"{case.name}: scored, expected a failure matching {case.expect!r}")
        elif not re.search(case.expect, r.reason or ""):
            problems.append(f"{case.name}: reason {r.reason!r} does not match {case.expect!r}")
        if r.reason and (t.secret in r.reason or len(_without_recipes(r.reason)) > 400):
            problems.append(f"{case.name}: reason leaks or is too long: {r.reason[:80]!r}")
        if pool.health()["pid"] != zygote:
            problems.append(f"{case.name}: the zygote died")
            zygote = pool.health()["pid"]
    elapsed = time.monotonic() - t0
    print("\n".join(table))
    print(f"{len(env['cases'])} cases in {elapsed:.1f} s")
    assert not problems, "\n".join(problems)
    out, err = capfd.readouterr()
    assert "REDTEAM-FLOOD" not in out + err
    assert len(env["cases"]) >= 45 and elapsed < 120


def test_nothing_reached_outside(env):
    # Runs after the corpus (same module, file order): no file, connection, datagram or signal got out.
    t = env["targets"]
    assert _written(t) == []
    assert {d: os.stat(d).st_mtime_ns for d in env["mtimes"]} == env["mtimes"]
    tcp, udp, unix, abstract = env["sockets"]
    for listener in (tcp, unix, abstract):
        with pytest.raises(BlockingIOError):
            listener.accept()
    with pytest.raises(BlockingIOError):
        udp.recv(16)
    assert env["received"] == []
    health = env["pool"].health()
    # Only the next spare may live: already confined, as nobody, waiting for its one request.
    assert _children_of(health["pid"]) in ([], [health["spare_pid"]])
    if health["spare_pid"] and os.geteuid() == 0:
        with open(f"/proc/{health['spare_pid']}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["65534"] * 4


def test_honest_model_scores_exactly_after_the_corpus(env, tmp_path):
    pool, t = env["pool"], env["targets"]
    torch.manual_seed(3)
    net = Honest().eval()
    path = str(tmp_path / "honest.pt")
    torch.jit.save(torch.jit.script(net), path)
    r = _run(pool, t, path)
    assert r.ok, r.reason
    with np.load(t.inputs_path) as npz, torch.inference_mode():
        expected = net(torch.from_numpy(npz["x"])).numpy()
    np.testing.assert_allclose(r.scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [FromFileTheft, SetstateTheft])
def test_theft_models_do_steal_without_the_sandbox(env, cls):
    # Control: these attacks are real; loaded in an ordinary process they read the labels.
    t = env["targets"]
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(cls(t.labels_path, t.n, t.num_classes)), buf)
    buf.seek(0)
    scores = torch.jit.load(buf)(torch.zeros(t.n, 1, 28, 28)).numpy()
    assert (scores.argmax(1) == labels_of(t)).all()


def test_previous_scores_do_not_linger(env, tmp_path):
    # A later child is forked from the zygote that relayed an earlier submission's scores:
    # it must not find them in its own memory.
    from redteam import craft
    from redteam.corpus import MarkerScores, memory_scan_source

    pool, t = env["pool"], env["targets"]
    victim = str(tmp_path / "victim.pt")
    torch.jit.save(torch.jit.script(MarkerScores()), victim)
    assert _run(pool, t, victim).ok
    thief = tmp_path / "thief.pt"
    thief.write_bytes(craft.python_at_load(memory_scan_source()))
    r = _run(pool, t, str(thief))
    assert not r.ok and r.reason.endswith("probe scan=LookupError"), r.reason


@pytest.mark.parametrize("craft_name", ["python_at_load", "pickle_in_sample_inputs", "pickle_in_weight"])
def test_pt2_payloads_do_run_without_the_sandbox(tmp_path, craft_name, monkeypatch):
    # Control: torch.export.load runs Python from the file (sympify's eval, pickle fallbacks) in an ordinary process.
    from redteam import craft_formats

    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    marker = tmp_path / "ran"
    crafted = getattr(craft_formats, craft_name)(craft_formats.honest_pt2(), f"open({str(marker)!r}, 'w').close()")
    try:
        torch.export.load(io.BytesIO(crafted))
    except Exception:
        pass  # what the payload leaves behind need not load; it ran
    assert marker.exists()
