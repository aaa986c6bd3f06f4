"""The `podium lti` verbs on a migrated database: add-platform prints the URLs, list, remove, rotate-key."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import live


def podium(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "podium.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=live.REPO)


def test_lti_cli_add_list_remove_rotate(tmp_path):
    env = dict(os.environ, PODIUM_DATA_DIR=str(tmp_path / "var"), PODIUM_PUBLIC_URL="https://podium.uni.example")
    assert podium(env, "db", "upgrade").returncode == 0
    out = podium(env, "lti", "add-platform", "--issuer", "https://canvas.instructure.com", "--client-id", "10000000000042",
                 "--deployment-id", "7:abc", "--login-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
                 "--token-url", "https://sso.canvaslms.com/login/oauth2/token",
                 "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks",
                 "--frame-origin", "https://school.instructure.com")
    assert out.returncode == 0, out.stderr
    for url in ("https://podium.uni.example/lti/login", "https://podium.uni.example/lti/launch",
                "https://podium.uni.example/lti/jwks"):
        assert url in out.stdout
    assert "frame-ancestors: https://school.instructure.com" in out.stdout
    listed = podium(env, "lti", "list")
    assert "https://canvas.instructure.com\t10000000000042\t7:abc" in listed.stdout
    unknown = podium(env, "lti", "add-platform", "--issuer", "https://m.example", "--client-id", "c", "--deployment-id",
                     "1", "--login-url", "https://m.example/auth", "--token-url", "https://m.example/token",
                     "--jwks-url", "https://m.example/jwks", "--course", "NOSUCHCODE")
    assert unknown.returncode == 2 and "no course" in unknown.stderr
    first = podium(env, "lti", "rotate-key").stdout.split()[-1]
    second = podium(env, "lti", "rotate-key").stdout.split()[-1]
    assert first != second
    assert podium(env, "lti", "remove", "1").returncode == 0
    assert podium(env, "lti", "remove", "1").returncode == 1
    assert podium(env, "lti", "list").stdout.strip() == "no platform registered"
