"""Publishing challenges from bundles (a folder, or a zip uploaded by an instructor)."""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.bundle import Bundle, BundleError, load_bundle, save_npz, zip_dir
from server.models import Challenge, utcnow
from server.queueing import queue_for_device
from server.storage import LocalStore

MAX_BUNDLE_BYTES = 2 << 30
MAX_BUNDLE_FILES = 200_000


class ChallengeExists(ValueError):
    """A challenge with this slug exists and replacing it was not asked for."""


def _store_arrays(store: LocalStore, tmp: Path, name: str, x, y) -> str:
    path = tmp / name
    save_npz(path, x, y)
    return store.put_file(path)


def _starter_kit(store: LocalStore, bundle: Bundle, tmp: Path) -> str | None:
    """Zip the starter folder together with the public training data."""
    if bundle.starter_dir is None and bundle.train_x is None:
        return None
    kit = tmp / "kit"
    if bundle.starter_dir is not None:
        shutil.copytree(bundle.starter_dir, kit, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    kit.mkdir(exist_ok=True)
    if bundle.train_x is not None:
        save_npz(kit / "train.npz", bundle.train_x, bundle.train_y)
    if not (kit / "README.md").exists():
        (kit / "README.md").write_text(f"# {bundle.spec.title}\n\n{bundle.spec.summary}\n\ntrain.npz holds x and y.\n")
    zip_dir(kit, tmp / "starter.zip")
    return store.put_file(tmp / "starter.zip")


def publish_bundle(session: Session, store: LocalStore, root: Path, *, replace: bool = False) -> Challenge:
    """Validate a bundle folder whole, store its data by hash and create (or replace) the challenge row."""
    bundle = load_bundle(Path(root))
    spec = bundle.spec
    existing = session.scalar(select(Challenge).where(Challenge.slug == spec.slug))
    if existing is not None and not replace:
        raise ChallengeExists(f"challenge {spec.slug!r} already exists; use --replace to update it")
    with tempfile.TemporaryDirectory(prefix="podium-publish-") as tmpdir:
        tmp = Path(tmpdir)
        test_sha = _store_arrays(store, tmp, "test.npz", bundle.test_x, bundle.test_y)
        train_sha = _store_arrays(store, tmp, "train.npz", bundle.train_x, bundle.train_y) \
            if bundle.train_x is not None else None
        starter_sha = _starter_kit(store, bundle, tmp)
    challenge = existing or Challenge(slug=spec.slug, created_at=utcnow())
    challenge.title = spec.title
    challenge.summary = spec.summary
    challenge.kind = spec.kind
    challenge.labels = list(spec.labels)
    challenge.input_shape = list(spec.input_shape)
    challenge.metric = spec.metric
    challenge.public_fraction = spec.public_fraction
    challenge.split_seed = spec.split_seed
    challenge.opens_at = spec.opens_at
    challenge.deadline = spec.deadline
    challenge.daily_limit = spec.daily_limit
    challenge.max_model_mb = spec.max_model_mb
    challenge.time_limit_s = spec.time_limit_s
    challenge.memory_limit_mb = spec.memory_limit_mb
    challenge.feature_recipe = dict(spec.feature_recipe) if spec.feature_recipe else None
    challenge.readme = spec.readme
    challenge.queue = queue_for_device(spec.device)
    challenge.test_sha256 = test_sha
    challenge.n_test = int(bundle.test_y.shape[0])
    challenge.train_sha256 = train_sha
    challenge.starter_sha256 = starter_sha
    session.add(challenge)
    session.flush()
    return challenge


def _bundle_root(folder: Path) -> Path:
    """The folder holding challenge.toml: the zip's top level or its single top folder."""
    if (folder / "challenge.toml").is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    if len(children) == 1 and (children[0] / "challenge.toml").is_file():
        return children[0]
    raise BundleError("challenge.toml: not found at the top of the zip (or inside its single top folder)")


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Safely unpack a bundle zip (no absolute or '..' paths, bounded size); returns the bundle root."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise BundleError("the upload is not a zip file")
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_BUNDLE_FILES:
            raise BundleError(f"the zip has {len(infos)} entries; at most {MAX_BUNDLE_FILES} are accepted")
        if sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
            raise BundleError("the zip unpacks to more than 2 GiB")
        for info in infos:
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name:
                raise BundleError(f"{name}: unsafe path in the zip")
        zf.extractall(dest)
    return _bundle_root(dest)


def publish_zip(session: Session, store: LocalStore, zip_path: Path, *, replace: bool = False) -> Challenge:
    """Publish a zipped bundle; nothing is created when any part of it is wrong."""
    with tempfile.TemporaryDirectory(prefix="podium-bundle-") as tmpdir:
        root = extract_zip(Path(zip_path), Path(tmpdir))
        return publish_bundle(session, store, root, replace=replace)


def publish_upload(session: Session, store: LocalStore, upload, *, replace: bool = False) -> Challenge:
    """Publish a bundle zip received as an upload (anything with save(path)), for the web form and the API."""
    with tempfile.TemporaryDirectory(prefix="podium-bundle-zip-") as tmp:
        path = Path(tmp) / "bundle.zip"
        upload.save(path)
        return publish_zip(session, store, path, replace=replace)
