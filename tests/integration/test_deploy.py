"""The department deployment: docker-compose.yml validates and every service runs a command the package has."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
import yaml

from podium.cli.main import parse
from podium.core.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
SECRETS = {"PODIUM_SECRET_KEY": "k" * 40, "POSTGRES_PASSWORD": "pg-test-pw", "REDIS_PASSWORD": "redis-test-pw",
           "MINIO_ROOT_PASSWORD": "minio-test-pw"}
PODIUM_IMAGES = ("podium:", "podium-gpu:")


def _compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("PODIUM_")}
    return subprocess.run([exe, "-f", str(COMPOSE), *args], env={**clean, **(env or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    """The compose file as docker-compose resolves it (interpolation, anchors and merges applied)."""
    proc = _compose("config", env=SECRETS)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def _podium_services(config: dict) -> dict:
    return {name: svc for name, svc in config["services"].items() if svc.get("image", "").startswith(PODIUM_IMAGES)}


def _argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_compose_file_validates(config):
    """docker-compose accepts the file and it has every service of the department set-up."""
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "web", "worker-cpu", "worker-gpu", "beat"} \
        <= set(config["services"])
    assert {"pgdata", "redisdata", "miniodata"} <= set(config["volumes"])


def test_compose_refuses_to_run_without_secrets():
    """Secrets come from the environment; without them the file does not even resolve."""
    proc = _compose("config", env={k: v for k, v in SECRETS.items() if k != "PODIUM_SECRET_KEY"})
    assert proc.returncode != 0 and "PODIUM_SECRET_KEY" in proc.stderr


def test_every_podium_service_runs_a_command_the_package_has(config):
    """Each podium container's command is a `podium` verb that our own CLI parser accepts."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["podium"] == "podium.cli.main:main"
    services = _podium_services(config)
    assert set(services) == {"migrate", "web", "worker-cpu", "worker-gpu", "beat"}
    verbs = {}
    for name, svc in services.items():
        argv = _argv(svc["command"])
        assert argv[0] == "podium", (name, argv)
        try:
            args = parse(argv[1:])
        except click.UsageError:
            pytest.fail(f"service {name}: `{' '.join(argv)}` is not a valid podium command")
        verbs[name] = args
    assert verbs["migrate"][0] == "db upgrade"
    assert verbs["web"][0] == "serve" and verbs["web"][1]["host"] == "0.0.0.0" and verbs["web"][1]["workers"] >= 2
    assert verbs["beat"][0] == "beat"
    for name, device in (("worker-cpu", "cpu"), ("worker-gpu", "gpu")):
        verb, params = verbs[name]
        assert verb == "worker" and params["concurrency"] == 1
        assert set(params["queues"].split(",")) == {device, "podium"}


def test_dockerfile_default_command_and_installs_what_pyproject_declares():
    """The image runs `podium serve` by default, installs the package itself and torch at the pinned version."""
    text = (REPO / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    argv = yaml.safe_load(cmd.group(1))
    assert argv[0] == "podium" and parse(argv[1:])[0] == "serve"
    # A regular install: the image must not depend on the source tree being there.
    # ... at the versions the suite passed with, as make venv installs them.
    assert "pip install -c constraints.txt ." in text and "pip install -e" not in text
    # The torch pin is read from pyproject.toml by the same expression the Dockerfile runs.
    expr = re.search(r'python -c "(import tomllib;.*?)"\)', text).group(1)
    pin = subprocess.run([sys.executable, "-c", expr], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pin in declared and pin.startswith("torch==")
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert not re.search(r"(SECRET|PASSWORD)\S*=", text), "no secret may be baked into the image"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "var"} <= set(ignored)


def test_services_get_valid_production_settings_from_their_environment(config, tmp_path):
    """Every PODIUM_* variable the compose file sets is one the code reads, and the settings pass the checks."""
    source = "\n".join(p.read_text() for d in ("podium", "server", "worker") for p in (REPO / d).rglob("*.py"))
    for name, svc in _podium_services(config).items():
        env = {k: str(v) for k, v in svc["environment"].items()}
        for key in env:
            if key.startswith("PODIUM_"):
                assert key in source, f"service {name} sets {key}, which no code reads"
        settings = Settings.from_env(dict(env, PODIUM_DATA_DIR=str(tmp_path)))
        assert settings.env == "production" and settings.secret_key == SECRETS["PODIUM_SECRET_KEY"]
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert settings.broker_url.startswith("redis://")
        assert settings.storage_url.startswith("s3://") and settings.s3_endpoint_url
    gpu = config["services"]["worker-gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"] and len(device["device_ids"]) == 1
    assert gpu["environment"]["PODIUM_GPU"] == "0" and int(gpu["environment"]["PODIUM_GPU_MEMORY_MB"]) > 0
    assert config["services"]["worker-cpu"]["environment"]["CUDA_VISIBLE_DEVICES"] == ""


def test_stateful_services_have_health_checks_and_the_web_waits_for_them(config):
    """Postgres, Redis and MinIO report health; migrations finish before the web and workers start."""
    services = config["services"]
    for name in ("postgres", "redis", "minio", "web"):
        assert services[name].get("healthcheck", {}).get("test"), name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert "/healthz" in " ".join(_argv(services["web"]["healthcheck"]["test"]))
