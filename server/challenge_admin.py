"""Publishing challenges from bundles (a folder, or a zip uploaded by an instructor)."""
from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core import board
from podium.core.bundle.archive import save_npz, zip_dir
from podium.core.bundle.data import Bundle, load_bundle
from podium.core.bundle.spec import BundleError
from podium.core.models import Challenge, utcnow
from podium.core.queueing import queue_for_device
from podium.core.storage import LocalStore
from podium.server import lifecycle

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


def publish_bundle(session: Session, store: LocalStore, root: Path, *, replace: bool = False, publish: bool = False,
                   notes: list[str] | None = None) -> Challenge:
    """Validate a bundle folder whole, store its data by hash and create (or replace) the challenge row.

    A new challenge is a draft unless `publish`; a replaced one keeps its state unless `publish`.
    `notes` receives what the person should hear: a cast to float32, a title another challenge has.
    """
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
    challenge.team_size = spec.team_size
    challenge.max_params = spec.max_params
    challenge.max_mflops = spec.max_mflops
    challenge.ranking = spec.ranking
    challenge.feature_recipe = dict(spec.feature_recipe) if spec.feature_recipe else None
    challenge.readme = spec.readme
    challenge.queue = queue_for_device(spec.device)
    challenge.test_sha256 = test_sha
    challenge.n_test = int(bundle.test_y.shape[0])
    challenge.train_sha256 = train_sha
    challenge.starter_sha256 = starter_sha
    if existing is None:
        challenge.state = lifecycle.DRAFT
    if publish:
        challenge.state = lifecycle.PUBLISHED
    session.add(challenge)
    session.flush()
    if notes is not None:
        notes.extend(bundle.notes)
        warning = lifecycle.duplicate_title_warning(session, challenge)
        if warning:
            notes.append(warning)
    if existing is not None:  # team_size may have changed who competes; title and metric show on the board
        board.refresh(session, challenge.id)
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
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BundleError(f"{name}: the zip holds a symbolic link; bundles hold plain files only")
        try:
            zf.extractall(dest)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BundleError(f"the zip is damaged ({exc})")
        except OSError as exc:  # a file and a folder of the same name, and the like
            raise BundleError(f"the zip cannot be unpacked: {exc.strerror or exc}")
    return _bundle_root(dest)


def publish_zip(session: Session, store: LocalStore, zip_path: Path, **options) -> Challenge:
    """Publish a zipped bundle (options as publish_bundle's); nothing is created when any part of it is wrong."""
    with tempfile.TemporaryDirectory(prefix="podium-bundle-") as tmpdir:
        root = extract_zip(Path(zip_path), Path(tmpdir))
        return publish_bundle(session, store, root, **options)


def publish_upload(session: Session, store: LocalStore, upload, **options) -> Challenge:
    """Publish a bundle zip received as an upload (anything with save(path)), for the web form and the API."""
    with tempfile.TemporaryDirectory(prefix="podium-bundle-zip-") as tmp:
        path = Path(tmp) / "bundle.zip"
        upload.save(path)
        return publish_zip(session, store, path, **options)
