"""Every folder of Python code under the import root is a regular package, so the wheel (packages.find) ships it."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "podium"
DATA_ONLY = {"migrations/versions"}  # shipped as package data, loaded by Alembic from files


def test_every_code_folder_has_an_init():
    missing = []
    for folder, dirs, files in os.walk(ROOT, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = Path(folder).relative_to(ROOT).as_posix()
        if any(f.endswith(".py") for f in files) and rel not in DATA_ONLY and "starter" not in rel.split("/"):
            if "__init__.py" not in files:
                missing.append(rel)
    assert missing == [], f"folders the wheel would leave out (no __init__.py): {missing}"
