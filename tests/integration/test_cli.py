"""The `podium` console script against a live stack: submit --wait, leaderboard, starter, check, admin verbs."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn


def podium(*args, env=None, timeout=180, cwd=live.REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "podium.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)


def client_env(stack, user="alice") -> dict:
    return dict(os.environ, PODIUM_URL=stack.url, PODIUM_TOKEN=stack.tokens[user])


def test_submit_wait_prints_score_and_rank(sqlite_stack, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(scripted_bytes(small_cnn(seed=3, in_shape=(1, 8, 8), num_classes=3)))
    out = podium("submit", str(model), "--challenge", "tiny", "--wait", env=client_env(sqlite_stack))
    assert out.returncode == 0, out.stderr
    assert "queued" in out.stdout and "scored: public" in out.stdout and "rank" in out.stdout
    board = podium("leaderboard", "tiny", env=client_env(sqlite_stack))
    assert board.returncode == 0 and "alice" in board.stdout


def test_submit_failure_exits_nonzero_with_reason(sqlite_stack, tmp_path):
    model = tmp_path / "pickled.pt"
    torch.save(small_cnn(in_shape=(1, 8, 8), num_classes=3), model)
    out = podium("submit", str(model), "--challenge", "tiny", "--wait", env=client_env(sqlite_stack))
    assert out.returncode != 0
    assert "torch.jit.save" in (out.stdout + out.stderr)


def test_starter_kit_download(sqlite_stack, tmp_path):
    out = podium("starter", "digits", str(tmp_path / "kit"), env=client_env(sqlite_stack))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "kit" / "train.npz").is_file() and (tmp_path / "kit" / "README.md").is_file()
    assert "torch.export.save" in (tmp_path / "kit" / "train.py").read_text()
    assert not (tmp_path / "kit" / "keras").exists()


def test_keras_starter_kit_download(sqlite_stack, tmp_path):
    out = podium("starter", "digits", str(tmp_path / "kit"), "--framework", "keras", env=client_env(sqlite_stack))
    assert out.returncode == 0, out.stderr
    assert "keras starter kit for digits" in out.stdout
    kit = tmp_path / "kit"
    assert (kit / "train.npz").is_file() and (kit / "requirements.txt").is_file()
    assert 'model.export(str(out), format="onnx"' in (kit / "train.py").read_text()
    assert "(Keras)" in (kit / "README.md").read_text()


def test_check_good_and_bad_models(sqlite_stack, tmp_path):
    good = tmp_path / "good.pt"
    good.write_bytes(scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3)))
    out = podium("check", str(good), "--challenge", "tiny", env=client_env(sqlite_stack))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=5)))
    out = podium("check", str(wrong), "--challenge", "tiny", env=client_env(sqlite_stack))
    assert out.returncode == 1 and "3]" in out.stdout


def test_bad_token_is_a_clear_error(sqlite_stack, tmp_path):
    env = dict(client_env(sqlite_stack), PODIUM_TOKEN="pod_wrong")
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    out = podium("submit", str(model), "--challenge", "tiny", env=env)
    assert out.returncode == 2 and "token" in out.stderr


def test_admin_verbs(tmp_path):
    env = dict(os.environ, PODIUM_DATA_DIR=str(tmp_path / "var"))
    env.pop("PODIUM_DATABASE_URL", None)
    env.pop("PODIUM_BROKER_URL", None)
    assert podium("db", "upgrade", env=env).returncode == 0
    assert podium("user", "add", "carol", "--role", "instructor", env=env).returncode == 0
    dup = podium("user", "add", "carol", env=env)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    token = podium("token", "carol", env=env)
    assert token.returncode == 0 and token.stdout.strip().startswith("pod_")
    bundle = write_tiny_bundle(tmp_path / "b", slug="cli-tiny")
    added = podium("challenge", "add", str(bundle), env=env)
    assert added.returncode == 0 and "cli-tiny" in added.stdout
    again = podium("challenge", "add", str(bundle), env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    (bundle / "challenge.toml").write_text((bundle / "challenge.toml").read_text().replace('kind = "image"', 'kind = "video"'))
    bad = podium("challenge", "add", str(bundle), "--replace", env=env)
    assert bad.returncode == 2 and "kind" in bad.stderr


def test_missing_token_names_podium_token(sqlite_stack, tmp_path):
    env = client_env(sqlite_stack)
    env.pop("PODIUM_TOKEN")
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    out = podium("submit", str(model), "--challenge", "tiny", env=env)
    assert out.returncode == 2 and "PODIUM_TOKEN" in out.stderr and "Traceback" not in out.stderr


def _no_db_env() -> dict:
    env = dict(os.environ)
    for name in ("PODIUM_DATA_DIR", "PODIUM_DATABASE_URL", "PODIUM_BROKER_URL"):
        env.pop(name, None)
    return env


def test_verbs_outside_the_data_dir_say_what_is_missing(tmp_path):
    """Run from a directory without ./var: every verb that needs the database says so in one line, no traceback."""
    bundle = write_tiny_bundle(tmp_path / "b", slug="cli-nodb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for verb in (["challenge", "add", str(bundle)], ["challenge", "publish", "cli-nodb"], ["user", "add", "dan"],
                 ["token", "dan"], ["lti", "list"], ["backup", str(tmp_path / "snap")], ["serve"], ["worker"]):
        out = podium(*verb, env=_no_db_env(), cwd=elsewhere)
        assert out.returncode == 2, (verb, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr, (verb, out.stderr)
        line = out.stderr.strip()
        assert "\n" not in line and "no Podium database in ./var" in line and "PODIUM_DATA_DIR" in line \
            and "podium db upgrade" in line, (verb, line)
    assert not (elsewhere / "var").exists()  # nothing was created on the way


def test_data_dir_named_when_set(tmp_path):
    env = dict(_no_db_env(), PODIUM_DATA_DIR=str(tmp_path / "data"))
    out = podium("token", "dan", env=env, cwd=tmp_path)
    assert out.returncode == 2 and f"no Podium database in {tmp_path / 'data'} (PODIUM_DATA_DIR)" in out.stderr
    assert podium("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    out = podium("token", "dan", env=env, cwd=tmp_path)
    assert out.returncode == 2 and "no user named 'dan'" in out.stderr
