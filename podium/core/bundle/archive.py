"""Challenge bundles, part three: write npz files and zips byte for byte reproducibly, and atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# Fixed zip timestamp so that the same content always gives the same bytes (and sha256).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _atomic_write(dest: Path, write) -> None:
    """Call write(file) on a temporary file next to dest, then rename it over dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


@contextmanager
def building_dir(dest: Path):
    """Yield a fresh folder beside dest; it replaces dest only if the block finishes without error."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    work.chmod(0o755)
    try:
        yield work
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def save_npz(path, x, y) -> str:
    """Write x and y as an uncompressed .npz (what np.savez writes) and return the file's sha256 hex."""
    arrays = {"x": np.ascontiguousarray(x), "y": np.ascontiguousarray(y)}

    def write(f):
        # Like np.savez, but with a fixed timestamp so equal arrays give equal bytes.
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, arr in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)

    _atomic_write(Path(path), write)
    return _sha256(Path(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zip_dir(src: Path, dest: Path) -> None:
    """Zip the files under src into dest, byte-for-byte the same for the same files."""
    src = Path(src)
    files = sorted(
        p for p in src.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())

    _atomic_write(Path(dest), write)
