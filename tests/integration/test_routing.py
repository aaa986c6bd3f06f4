"""Queue routing: per-device queues, per-challenge routing, fair share between courses, worker pinning."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from podium.cli.processes import worker_environment, worker_queues
from podium.core.config import Settings
from podium.core.db import Database
from podium.core.models import Challenge, Course, Submission, User
from podium.core.queueing import fair_share_priority, queue_for, queue_for_device, waiting_ahead
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.hosts import claimed_by, cmdline_of, descendants, environ_of
from tests.support.models import scripted_bytes, small_cnn

BURST = 8


def test_device_names_map_to_queues():
    """challenge.toml's device picks the queue; no device means any worker may take it."""
    assert queue_for_device("gpu") == "gpu" and queue_for_device("cpu") == "cpu"
    assert queue_for_device("any") is None and queue_for_device(None) is None
    with pytest.raises(ValueError, match="device"):
        queue_for_device("tpu")
    assert queue_for(Challenge(queue=None)) == "podium" and queue_for(Challenge(queue="gpu")) == "gpu"


def test_challenge_toml_device_key():
    """`device` in challenge.toml is parsed, defaults to any, and a wrong value names the key."""
    from podium.core.bundle.spec import BundleError, parse_spec
    base = ('slug = "d-test"\ntitle = "T"\nkind = "image"\nlabels = ["a", "b"]\ninput_shape = [1, 8, 8]\n')
    assert parse_spec(base).device == "any"
    for device, queue in (("gpu", "gpu"), ("cpu", "cpu"), ("any", None)):
        assert queue_for_device(parse_spec(base + f'device = "{device}"\n').device) == queue
    with pytest.raises(BundleError, match="key 'device'"):
        parse_spec(base + 'device = "tpu"\n')


def test_fair_share_priority_falls_with_backlog():
    """The more of a course is already waiting, the later its next message is served (Redis: 0 first)."""
    steps = [fair_share_priority(n) for n in range(15)]
    assert steps[0] == 0 and steps[-1] == 9
    assert steps == sorted(steps) and set(steps) <= {0, 3, 6, 9}


def test_worker_queues_and_gpu_pinning(tmp_path):
    """A GPU worker consumes gpu + podium and sees only its own device; a CPU worker consumes cpu + podium."""
    base = {"PODIUM_DATA_DIR": str(tmp_path)}
    cpu = Settings.from_env(base)
    assert worker_queues(cpu, None) == "cpu,podium,lti" and worker_environment(cpu) == {}
    gpu = Settings.from_env(dict(base, PODIUM_GPU="2", PODIUM_GPU_MEMORY_MB="6000"))
    assert worker_queues(gpu, None) == "gpu,podium,lti"
    assert worker_environment(gpu) == {"CUDA_VISIBLE_DEVICES": "2"}
    assert gpu.scoring_memory_mb(2048) == 2048 and gpu.scoring_memory_mb(16000) == 6000
    assert cpu.scoring_memory_mb(16000) == 16000
    assert worker_queues(Settings.from_env(dict(base, PODIUM_QUEUES="course-ml, podium")), None) == "course-ml,podium"
    assert worker_queues(cpu, " gpu , ") == "gpu"
    with pytest.raises(ValueError):
        worker_queues(cpu, " , ")


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """Web on a SQLite DB and a private Redis; challenges routed to gpu, cpu, any device and a 'fair' queue."""
    root = tmp_path_factory.mktemp("routing")
    redis = live.RedisServer(root / "redis").start()
    bundles = [write_tiny_bundle(root / slug, slug=slug, seed=i)
               for i, slug in enumerate(["gpu-only", "cpu-only", "anywhere", "course-a", "course-b"])]
    settings = live.settings_for(root / "var", broker_url=redis.url)
    users = {name: "student" for name in ("u1", "u2", "u3", "a1", "b1")}
    tokens = live.prepare_database(settings, bundles, users)
    db = Database(settings.database_url)
    with db.session() as s:
        a, b = Course(name="Course A", join_code="AAAA1111"), Course(name="Course B", join_code="BBBB2222")
        s.add_all([a, b])
        s.flush()
        for slug, queue, course in [("gpu-only", "gpu", None), ("cpu-only", "cpu", None), ("anywhere", None, None),
                                    ("course-a", "fair", a.id), ("course-b", "fair", b.id)]:
            s.execute(update(Challenge).where(Challenge.slug == slug)
                      .values(queue=queue, course_id=course, max_queued=100))
    stack = live.Stack(settings)
    stack.tokens = tokens
    stack.db = db
    stack.start_web()
    yield stack
    stack.stop()
    db.dispose()
    redis.stop()


def _submit(stack, user: str, slug: str, seed: int = 0) -> int:
    model = scripted_bytes(small_cnn(seed=seed, in_shape=(1, 8, 8), num_classes=3))
    resp = live.Api(stack.url, stack.tokens[user]).submit(slug, model)
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def _row(stack, sub_id: int) -> Submission:
    with stack.db.session() as s:
        return s.get(Submission, sub_id)


def _wait_ready(stack, name: str) -> None:
    live.wait_until(lambda: "ready" in stack.log(name), 60, f"{name} did not start: {stack.log(name)[-2000:]}")


def test_gpu_only_challenge_waits_for_a_gpu_worker_while_cpu_challenges_proceed(routed):
    """Only a worker consuming the gpu queue scores a GPU-only challenge; CPU work never waits behind it."""
    gpu_sub = _submit(routed, "u1", "gpu-only")          # first in, so FIFO alone would serve it first
    cpu_sub = _submit(routed, "u2", "cpu-only")
    any_sub = _submit(routed, "u3", "anywhere")
    routed.start_worker("cpu-worker", queues="cpu,podium")
    for sub_id, user in ((cpu_sub, "u2"), (any_sub, "u3")):
        sub = live.Api(routed.url, routed.tokens[user]).wait_finished(sub_id, timeout_s=90)
        assert sub["status"] == "scored", (sub, routed.log("cpu-worker")[-3000:])
    waiting = _row(routed, gpu_sub)
    assert waiting.status == "queued" and waiting.started_at is None and waiting.enqueued_at is not None

    routed.start_worker("gpu-worker", queues="gpu,podium", PODIUM_GPU="3")
    sub = live.Api(routed.url, routed.tokens["u1"]).wait_finished(gpu_sub, timeout_s=90)
    assert sub["status"] == "scored", (sub, routed.log("gpu-worker")[-3000:])
    gpu_tree = descendants(routed.procs["gpu-worker"].pid)
    # Pinned: the pool process and the scoring sandbox below it see only GPU 3.
    sandbox = [p for p in gpu_tree if "podium.worker.sandbox.zygote" in cmdline_of(p)]
    assert sandbox, [cmdline_of(p) for p in gpu_tree]
    for pid in set().union(*(descendants(z) for z in sandbox)):  # exec'd after pinning: /proc shows their env
        env = environ_of(pid)
        assert not env or env.get("CUDA_VISIBLE_DEVICES") == "3", (cmdline_of(pid), env.get("CUDA_VISIBLE_DEVICES"))
    assert claimed_by(_row(routed, gpu_sub).worker, gpu_tree)
    assert not claimed_by(_row(routed, cpu_sub).worker, gpu_tree)
    routed.kill("cpu-worker")
    routed.kill("gpu-worker")


def test_one_course_burst_does_not_starve_another(routed):
    """Course A queues a burst, then course B one model: B is served next, not after A's whole burst."""
    a_subs = [_submit(routed, "a1", "course-a", seed=i) for i in range(BURST)]
    b_sub = _submit(routed, "b1", "course-b")
    with routed.db.session() as s:
        assert waiting_ahead(s, b_sub) == 0 and waiting_ahead(s, a_subs[-1]) == BURST - 1
    routed.start_worker("fair-worker", queues="fair")
    for sub_id in [*a_subs, b_sub]:
        user = "b1" if sub_id == b_sub else "a1"
        assert live.Api(routed.url, routed.tokens[user]).wait_finished(sub_id, timeout_s=120)["status"] == "scored"
    with routed.db.session() as s:
        order = [i for (i,) in s.execute(select(Submission.id).where(Submission.id.in_([*a_subs, b_sub]))
                                         .order_by(Submission.started_at)).all()]
    # FIFO would put B last (position 8); fair share puts it right after A's first model.
    assert order.index(b_sub) <= 1, order
    assert order[0] == a_subs[0]
    routed.kill("fair-worker")


def test_waiting_ahead_counts_the_course_not_other_courses(routed):
    """The backlog that lowers priority is the course's own (finished rows and other courses do not count)."""
    with routed.db.session() as s:
        user = s.scalar(select(User).where(User.username == "b1"))
        challenge = s.scalar(select(Challenge).where(Challenge.slug == "course-b"))
        other = s.scalar(select(Challenge).where(Challenge.slug == "course-a"))
        rows = [Submission(challenge_id=c.id, user_id=user.id, status="queued", model_sha256="0" * 64, model_size=1)
                for c in (challenge, challenge, other)]
        s.add_all(rows)
        s.flush()
        assert waiting_ahead(s, rows[0].id) == 1
        assert waiting_ahead(s, rows[2].id) == 0
        s.rollback()


def test_device_key_routes_the_published_challenge(tmp_path):
    """challenge.toml's device key decides the queue the challenge's submissions go to."""
    from podium.core.db import Database
    from podium.core.migrate import upgrade
    from podium.core.queueing import queue_for
    from podium.core.storage import LocalStore
    from podium.server.challenge_admin import publish_bundle
    from tests.support.bundles import write_tiny_bundle
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            for device, queue in (("gpu", "gpu"), ("cpu", "cpu"), ("any", "podium")):
                bundle = write_tiny_bundle(tmp_path / device, slug=f"dev-{device}", extra_toml=f'device = "{device}"\n')
                assert queue_for(publish_bundle(s, LocalStore(tmp_path / "blobs"), bundle)) == queue
    finally:
        db.dispose()
