"""Build every bundled challenge into a directory: `python -m podium.challenges.build DEST`."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

BUNDLED = ["digits", "spoken_commands"]
STAMP = ".podium-build"
HERE = Path(__file__).resolve().parent
# Code outside challenges/<name>/ whose changes alter what the builders write.
SHARED_MODULES = ("podium.core.bundle.spec", "podium.core.bundle.data", "podium.core.bundle.archive",
                  "podium.core.features")


def source_hash(name: str) -> str:
    """Return a sha256 over the files of challenges/<name>/ (builder, metadata, starter kit) and the shared modules."""
    digest = hashlib.sha256()
    package = HERE / name
    files = [(p.relative_to(package).as_posix(), p) for p in sorted(package.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    files += [(m, Path(importlib.import_module(m).__file__)) for m in SHARED_MODULES]
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_up_to_date(bundle_dir: Path, stamp: str) -> bool:
    """Return True when bundle_dir was built from sources with this stamp."""
    path = Path(bundle_dir) / STAMP
    return path.is_file() and path.read_text().strip() == stamp


def builder_module(name: str):
    """Return podium.challenges.<name>.build, or None when that challenge has no builder yet."""
    module_name = f"{__package__}.{name}.build"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, f"{__package__}.{name}"):
            return None
        raise


def build_all(dest_root: Path, force: bool = False, names: list[str] | None = None) -> list[Path]:
    """Build each bundled challenge (or just `names`) into dest_root/<name with - for _>, skipping ones up to date."""
    dest_root = Path(dest_root)
    built = []
    for name in BUNDLED if names is None else names:
        module = builder_module(name)
        if module is None:
            continue
        dest = dest_root / name.replace("_", "-")
        stamp = source_hash(name)
        if force or not is_up_to_date(dest, stamp):
            module.build(dest)
            (dest / STAMP).write_text(stamp + "\n")
        built.append(dest)
    return built


def main(argv: list[str] | None = None) -> int:
    """Command line: build the bundled challenges into DEST (default ./var/challenges)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m podium.challenges.build", description=__doc__)
    parser.add_argument("dest", nargs="?", default="var/challenges", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--only", action="append", choices=BUNDLED, help="build just this challenge (repeatable)")
    args = parser.parse_args(argv)
    for path in build_all(args.dest, force=args.force, names=args.only):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
