"""The red-team corpus through the real web server and Celery worker: every case ends failed (or harmless),
nothing is written anywhere, the worker survives, and an honest model then scores exactly."""
from __future__ import annotations

import re
import secrets
import signal
import textwrap

import numpy as np
import pytest
from redteam.corpus import build_corpus, labels_of, write_targets
from redteam.test_redteam import _listeners, _written

from podium.core.bundle.archive import save_npz
from tests.support import live
from tests.support.models import predict, scripted_bytes, small_cnn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redteam(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam-worker")
    token = "rtw" + secrets.token_hex(6)
    tcp, udp, unix, unix_path = _listeners(root)
    received = []
    old_handler = signal.signal(signal.SIGUSR1, lambda *a: received.append(a[0]))
    targets = write_targets(root, token=token, tcp_port=tcp.getsockname()[1], udp_port=udp.getsockname()[1],
                            unix_path=unix_path)
    cases = build_corpus(root / "corpus", targets)
    bundle = root / "bundle"
    (bundle / "data").mkdir(parents=True)
    (bundle / "challenge.toml").write_text(textwrap.dedent("""\
        slug = "redteam"
        title = "Red team"
        kind = "image"
        labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        input_shape = [1, 28, 28]
        public_fraction = 1.0
        daily_limit = 1000
        max_model_mb = 100
        time_limit_s = 4
        memory_limit_mb = 768
        """))
    with np.load(targets.inputs_path) as npz:
        x = npz["x"]
    save_npz(bundle / "data" / "test.npz", x, labels_of(targets))
    settings = live.settings_for(root / "var")
    tokens = live.prepare_database(settings, [bundle], {"prof": "instructor"})
    stack = live.Stack(settings)
    stack.start_web()
    worker = stack.start_worker()
    try:
        yield dict(stack=stack, api=live.Api(stack.url, tokens["prof"]), cases=cases, targets=targets, x=x,
                   worker=worker, received=received)
    finally:
        stack.stop()
        signal.signal(signal.SIGUSR1, old_handler)
        for s in (tcp, udp, unix):
            s.close()


def _outcome(api, path) -> tuple[str, str | None, float | None]:
    """Upload a file; return (where it stopped, reason, score)."""
    with open(path, "rb") as f:
        resp = api.submit("redteam", f.read())
    if resp.status_code != 202:
        return "web", resp.json()["error"]["message"], None
    sub = api.wait_finished(resp.json()["id"], 90)
    return sub["status"], sub["error"], sub["public_score"]


def test_every_case_contained_by_the_worker(redteam):
    api, t = redteam["api"], redteam["targets"]
    wrong = []
    for case in redteam["cases"]:
        where, reason, score = _outcome(api, case.path)
        if case.expect is None:
            ok = where == "failed" or (where == "scored" and score < 1.0)
        else:
            ok = where in ("web", "failed") and reason is not None and re.search(case.expect, reason) is not None
        if reason is not None:
            assert t.secret not in reason and len(reason) < 1000, (case.name, reason)
        if not ok:
            wrong.append((case.name, where, reason, score))
    assert not wrong, wrong
    assert redteam["worker"].poll() is None, "the worker died"
    assert _written(t) == []
    assert redteam["received"] == []


def test_honest_model_scores_exactly_after_the_corpus(redteam):
    model = small_cnn(seed=5)
    expected = float(np.mean(predict(model, redteam["x"]) == labels_of(redteam["targets"])))
    resp = redteam["api"].submit("redteam", scripted_bytes(model))
    sub = redteam["api"].wait_finished(resp.json()["id"], 60)
    assert sub["status"] == "scored", sub
    assert sub["public_score"] == pytest.approx(expected, abs=1e-12)
