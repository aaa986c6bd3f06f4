"""The scoring sandbox: honest models score right, broken ones fail with a plain reason, the pool survives."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch
from redteam import craft

from podium.worker.localcheck import check_model_file
from podium.worker.sandbox import SandboxUnavailable
from podium.worker.sandbox.batching import default_batch
from tests.support.devices import sandbox_pool, scored_on

N, C = 300, 10


class Honest(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 13 * 13, C)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


class Forever(torch.nn.Module):
    def forward(self, x):
        while bool(x.sum() > -1.0):
            x = x * 1.0
        return x


class MemoryBomb(torch.nn.Module):
    def forward(self, x):
        keep = []
        for _ in range(1000):
            keep.append(torch.ones(x.size(0) * 200_000))
        return torch.zeros(x.size(0), 10) + float(len(keep))


class WrongShape(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(7, 10)


class Raises(torch.nn.Module):
    def forward(self, x):
        msg = "secret"
        for _ in range(300):
            msg = msg + " secret"
        raise RuntimeError(msg)


class PrintFlood(torch.nn.Module):
    def forward(self, x):
        for i in range(20000):
            print("FLOOD-MARKER", i)
        return torch.zeros(x.size(0), 10)


class TupleOut(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.size(0), 10), x


class TwoArgs(torch.nn.Module):
    def forward(self, x, y):
        return torch.zeros(x.size(0), 10) + y


class NaNOut(torch.nn.Module):
    def forward(self, x):
        return torch.full([x.size(0), 10], float("nan"))


class BatchMixing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, C)

    def forward(self, x):
        return self.fc(torch.flatten(x - x.mean(dim=0, keepdim=True), 1))


def _save(tmp_path, module, name):
    path = tmp_path / f"{name}.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    x = np.random.default_rng(1).random((N, 1, 28, 28), dtype=np.float32)
    path = d / "test.npz"
    np.savez(path, x=x, y=np.arange(N) % C)
    return str(path), x


def _run(pool, data, model_path, **kw):
    kw.setdefault("time_limit_s", 10)
    kw.setdefault("memory_limit_mb", 512)
    return pool.run(model_path=model_path, inputs_path=data[0], inputs_key="test-inputs", num_classes=C, **kw)


def _honest_ok(pool, data, tmp_path):
    torch.manual_seed(0)
    net = Honest().eval()
    r = _run(pool, data, _save(tmp_path, net, "honest"))
    assert r.ok, r.reason
    with torch.inference_mode():
        expected = net(torch.from_numpy(data[1])).numpy()
    np.testing.assert_allclose(r.scores, expected, rtol=1e-5, atol=1e-5)
    return r


def test_honest_model_scores_right(pool, data, tmp_path):
    r = _honest_ok(pool, data, tmp_path)
    assert r.scores.dtype == np.float32 and r.scores.shape == (N, C)
    assert r.device == scored_on()
    for key in ("load_s", "inference_s", "transfer_s", "total_s"):
        assert 0 <= r.timings[key] < 30
    assert r.confinement["landlock"].startswith("ok")


def test_batch_size_does_not_change_scores(pool, data, tmp_path):
    path = _save(tmp_path, Honest().eval(), "honest")
    a = _run(pool, data, path, batch_size=1000)
    b = _run(pool, data, path, batch_size=7)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-5)


def test_grader_refuses_scores_that_depend_on_the_batch(pool, data, tmp_path):
    """The grader applies podium check's batch rule: the first inputs scored alone must match their batched rows."""
    r = _run(pool, data, _save(tmp_path, BatchMixing(), "mix"))
    assert not r.ok and r.scores is None
    assert r.reason.startswith("scores change with the batch size") and "each sample on its own" in r.reason


def test_timeout(pool, data, tmp_path):
    t0 = time.monotonic()
    r = _run(pool, data, _save(tmp_path, Forever(), "forever"), time_limit_s=1.5)
    assert not r.ok and r.reason == "ran longer than the 1.5 s limit"
    assert time.monotonic() - t0 < 5


def test_memory_bomb(pool, data, tmp_path):
    r = _run(pool, data, _save(tmp_path, MemoryBomb(), "bomb"), memory_limit_mb=300)
    assert not r.ok and r.reason == "used more than the 300 MB memory limit"


def test_crash_while_loading(pool, data, tmp_path):
    path = tmp_path / "crash.pt"
    path.write_bytes(craft.python_at_load("import ctypes; ctypes.string_at(0)"))
    r = _run(pool, data, str(path))
    assert not r.ok and r.reason == "the model crashed while loading (signal SIGSEGV)"


def test_wrong_shape(pool, data, tmp_path):
    r = _run(pool, data, _save(tmp_path, WrongShape(), "shape"), batch_size=1000)
    assert not r.ok and r.reason == f"output shape [7, 10], expected [{N}, {C}]"


def test_wrong_shape_in_batches(pool, data, tmp_path):
    r = _run(pool, data, _save(tmp_path, WrongShape(), "shape"), batch_size=100)
    assert r.reason == f"output shape [7, 10] for a batch of 100 inputs, expected [100, {C}]"


def test_raising_is_cut(pool, data, tmp_path):
    r = _run(pool, data, _save(tmp_path, Raises(), "raises"))
    assert not r.ok and r.reason.startswith("forward() raised: ")
    assert "secret" in r.reason and len(r.reason) <= 330


def test_print_flood_reaches_nobody(pool, data, tmp_path, capfd):
    r = _run(pool, data, _save(tmp_path, PrintFlood(), "flood"))
    assert r.ok, r.reason
    out, err = capfd.readouterr()
    assert "FLOOD-MARKER" not in out + err


@pytest.mark.parametrize("module, reason", [
    (TupleOut(), "forward() must return a single tensor, got a tuple"),
    (TwoArgs(), "forward() must take one argument (the input batch x), it takes 2"),
    (NaNOut(), "output contains NaN or Inf"),
])
def test_contract_breaches(pool, data, tmp_path, module, reason):
    r = _run(pool, data, _save(tmp_path, module, type(module).__name__))
    assert not r.ok and r.reason == reason


def test_pickle_never_reaches_the_loader(pool, data, tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save(Honest(), str(path))
    r = _run(pool, data, str(path))
    assert not r.ok and "torch.jit.script" in r.reason and r.timings["load_s"] == 0.0


def test_health_lists_layers(pool):
    h = pool.health()
    assert set(h["layers"]) == {"session", "stdio", "fds", "rlimits", "user", "namespaces", "landlock", "seccomp"}
    assert all(isinstance(v, str) for v in h["layers"].values())
    assert h["device"] == scored_on() and h["pid"] > 0 and h["alive"]
    # On this project's machines every layer works; a host without one must say so here.
    assert h["ok"], h
    assert all(h["blocked"].values()), h["blocked"]


def test_check_good_and_bad(pool, tmp_path):
    samples = np.random.default_rng(2).random((6, 1, 28, 28), dtype=np.float32)
    kw = dict(samples=samples, num_classes=C, time_limit_s=10, memory_limit_mb=512)
    assert pool.check(model_path=_save(tmp_path, Honest().eval(), "good"), **kw) == []
    problems = pool.check(model_path=_save(tmp_path, BatchMixing(), "mix"), **kw)
    assert len(problems) == 1 and "scores change with the batch size" in problems[0]
    problems = pool.check(model_path=_save(tmp_path, WrongShape(), "shape"), **kw)
    assert problems == ["output shape [7, 10], expected [6, 10]"]


def test_check_model_file(pool, tmp_path):
    challenge = {"input_shape": [1, 28, 28], "labels": [str(i) for i in range(C)], "max_model_mb": 5}
    assert check_model_file(_save(tmp_path, Honest().eval(), "good"), challenge=challenge) == []
    problems = check_model_file(_save(tmp_path, TupleOut(), "tuple"), challenge=challenge, pool=pool)
    assert problems == ["forward() must return a single tensor, got a tuple"]


def test_zygote_killed_between_runs_is_restarted(pool, data, tmp_path):
    os.kill(pool.health()["pid"], signal.SIGKILL)
    time.sleep(0.2)
    _honest_ok(pool, data, tmp_path)


def test_zygote_killed_during_run_is_an_infrastructure_error(pool, data, tmp_path):
    pid = pool.health()["pid"]
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(SandboxUnavailable):
        _run(pool, data, _save(tmp_path, Forever(), "forever"), time_limit_s=10)
    killer.join()
    assert pool.health()["pid"] != pid
    _honest_ok(pool, data, tmp_path)


def test_close_leaves_no_process(data, tmp_path):
    p = sandbox_pool()
    p.start()
    r = _run(p, data, _save(tmp_path, Forever(), "forever"), time_limit_s=0.5)
    assert not r.ok
    health = p.health()
    assert health["spare_pid"]
    p.close()
    for pid in (health["pid"], health["spare_pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_interrupted_request_does_not_desynchronise(pool, data, tmp_path):
    # A Celery soft time limit raises inside run(); the next run must get its own answer, not the late one.
    class Interrupt(BaseException):
        pass

    pid = pool.health()["pid"]
    forever, shape = _save(tmp_path, Forever(), "forever"), _save(tmp_path, WrongShape(), "shape")
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(Interrupt()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(Interrupt):
            _run(pool, data, forever, time_limit_s=3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    r = _run(pool, data, shape, batch_size=N)
    assert r.reason == f"output shape [7, 10], expected [{N}, {C}]"
    assert pool.health()["pid"] != pid


def test_preload_takes_input_decoding_off_the_first_run(pool, tmp_path):
    x = np.random.default_rng(5).random((50, 1, 28, 28), dtype=np.float32)
    np.savez(tmp_path / "fresh.npz", x=x, y=np.zeros(50, np.int64))
    assert pool.preload(inputs_path=str(tmp_path / "fresh.npz"), inputs_key="fresh") > 0
    assert "fresh" in pool.health()["cached_inputs"]
    r = pool.run(model_path=_save(tmp_path, Honest().eval(), "honest"), inputs_path=str(tmp_path / "fresh.npz"),
                 inputs_key="fresh", num_classes=C, time_limit_s=10, memory_limit_mb=512)
    assert r.ok and r.timings["inputs_s"] == 0.0 and r.timings["warm_child"] == 1.0


class BatchNormNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Dropout2d(0.2),
            torch.nn.Conv2d(8, 8, 3, stride=2), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
            torch.nn.Linear(128, C), torch.nn.LogSoftmax(dim=1))

    def forward(self, x):
        return self.body(x)


class Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(28, 16, batch_first=True)
        self.gru = torch.nn.GRU(16, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, C)

    def forward(self, x):
        seq, _ = self.lstm(x.squeeze(1))
        seq, _ = self.gru(seq)
        return self.fc(seq[:, -1])


class Spectral(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(28 * 15, C)

    def forward(self, x):
        spec = torch.fft.rfft(x.squeeze(1), dim=-1).abs()
        up = torch.nn.functional.interpolate(spec.unsqueeze(1), size=(28, 15), mode="bilinear", align_corners=False)
        return torch.softmax(self.fc(torch.flatten(up, 1)), dim=1)


@pytest.mark.parametrize("make, export", [
    (BatchNormNet, "script"), (BatchNormNet, "trace"), (Recurrent, "script"), (Spectral, "trace"),
])
def test_typical_architectures_score_right(pool, data, tmp_path, make, export):
    # Nothing these need may be loaded lazily from disk: after confinement no file can be opened.
    torch.manual_seed(4)
    net = make().eval()
    example = torch.from_numpy(data[1][:4])
    exported = torch.jit.script(net) if export == "script" else torch.jit.trace(net, example)
    path = str(tmp_path / f"{make.__name__}-{export}.pt")
    torch.jit.save(exported, path)
    r = _run(pool, data, path)
    assert r.ok, r.reason
    with torch.inference_mode():
        expected = net(torch.from_numpy(data[1])).numpy()
    np.testing.assert_allclose(r.scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device, elements, expected", [
    ("cpu", 1 * 28 * 28, 128),        # digits
    ("cpu", 1 * 40 * 101, 32),        # spoken-commands spectrograms
    ("cpu", 3 * 224 * 224, 8),        # never below 8
    ("cpu", 10, 128),                 # never above 128
    ("cuda:0", 1 * 28 * 28, 1024),
])
def test_default_batch_follows_input_size_on_cpu(device, elements, expected):
    assert default_batch(device, elements) == expected
