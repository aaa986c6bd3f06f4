"""Challenge bundles: parse challenge.toml, load and validate the data, write npz and zips."""

from __future__ import annotations

import dataclasses
import shutil
import datetime as dt
import hashlib
import math
import os
import re
import tempfile
import tomllib
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from podium.metrics import METRICS
from podium.split import public_mask

KINDS = ("image", "spectrogram", "other")
DEVICES = ("any", "gpu", "cpu")  # where scoring runs; "gpu" waits for a GPU worker (server.queueing)
SLUG_RE = re.compile(r"[a-z0-9-]{2,64}")
# Fixed zip timestamp so that the same content always gives the same bytes (and sha256).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """A challenge bundle is wrong; the message names the key, file or array at fault."""


@dataclass(frozen=True)
class ChallengeSpec:
    """The validated contents of challenge.toml (plus README.md)."""

    slug: str
    title: str
    summary: str
    kind: str
    labels: tuple[str, ...]
    input_shape: tuple[int, ...]
    metric: str = "accuracy"
    public_fraction: float = 0.3
    split_seed: int = 0
    opens_at: dt.datetime | None = None
    deadline: dt.datetime | None = None
    daily_limit: int = 10
    max_model_mb: float = 20.0
    time_limit_s: float = 60.0
    memory_limit_mb: int = 2048
    device: str = "any"
    feature_recipe: dict | None = field(default=None, hash=False)
    readme: str = ""

    @property
    def num_classes(self) -> int:
        """Return the number of classes (the count of labels)."""
        return len(self.labels)

    def public_metadata(self) -> dict:
        """Return the JSON-ready fields that GET /challenges/<slug> shows."""
        meta = {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "kind": self.kind,
            "labels": list(self.labels),
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "metric": self.metric,
            "public_fraction": self.public_fraction,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "daily_limit": self.daily_limit,
            "max_model_mb": self.max_model_mb,
            "time_limit_s": self.time_limit_s,
        }
        if self.feature_recipe is not None:
            meta["feature_recipe"] = dict(self.feature_recipe)
        return meta


@dataclass(eq=False)  # arrays have no single truth value; compare fields explicitly
class Bundle:
    """A loaded, validated challenge bundle."""

    spec: ChallengeSpec
    test_x: np.ndarray
    test_y: np.ndarray
    train_x: np.ndarray | None
    train_y: np.ndarray | None
    starter_dir: Path | None
    root: Path


# ---------------------------------------------------------------- challenge.toml

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _text(src, key, v, *, empty_ok=False) -> str:
    if not isinstance(v, str):
        raise BundleError(f"{src}: key '{key}' must be a string, got {type(v).__name__}")
    if not empty_ok and not v.strip():
        raise BundleError(f"{src}: key '{key}' must not be empty")
    return v


def _positive(src, key, v, *, integer: bool):
    ok = _is_int(v) if integer else _is_number(v)
    if not ok or v <= 0:
        want = "a positive integer" if integer else "a positive number"
        raise BundleError(f"{src}: key '{key}' must be {want}, got {v!r}")
    return int(v) if integer else float(v)


def _when(src, key, v) -> dt.datetime:
    """Return an aware datetime from a TOML offset datetime or an ISO 8601 string."""
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v)
        except ValueError:
            raise BundleError(f"{src}: key '{key}' is not an ISO 8601 date-time: {v!r}") from None
    if not isinstance(v, dt.datetime):
        shown = v.isoformat() if isinstance(v, (dt.date, dt.time)) else repr(v)
        raise BundleError(f"{src}: key '{key}' must be an ISO 8601 date-time with offset, got {shown}")
    if v.tzinfo is None or v.utcoffset() is None:
        raise BundleError(f"{src}: key '{key}' has no UTC offset: write e.g. {v.isoformat()}+00:00")
    return v


def _labels(src, v) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise BundleError(f"{src}: key 'labels' must be a non-empty list of strings")
    for item in v:
        if not isinstance(item, str) or not item.strip():
            raise BundleError(f"{src}: key 'labels' has {item!r}, expected non-empty strings")
    dupes = sorted({x for x in v if v.count(x) > 1})
    if dupes:
        raise BundleError(f"{src}: key 'labels' has duplicates: {', '.join(dupes)}")
    return tuple(v)


def _shape(src, v) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or not all(_is_int(d) and d > 0 for d in v):
        raise BundleError(f"{src}: key 'input_shape' must be a non-empty list of positive integers, got {v!r}")
    return tuple(v)


def _recipe(src, v) -> dict:
    if not isinstance(v, dict):
        raise BundleError(f"{src}: 'features' must be a table")
    for k, item in v.items():
        if not isinstance(item, (str, int, float, bool)):
            raise BundleError(f"{src}: key 'features.{k}' must be a string, number or boolean")
    return dict(v)


def _check_recipe(src, recipe: dict, shape: tuple[int, ...]) -> dict:
    """Return the recipe completed with defaults, checking that it yields input_shape."""
    from podium.features import input_shape, validate_recipe

    try:
        full = validate_recipe(recipe)
        produced = tuple(input_shape(full))
    except ValueError as exc:
        raise BundleError(f"{src}: {exc}") from None
    if produced != shape:
        raise BundleError(
            f"{src}: key 'input_shape' is {list(shape)} but the [features] recipe gives {list(produced)}"
        )
    return full


_FIELDS = {
    "slug", "title", "summary", "kind", "labels", "input_shape", "metric", "public_fraction",
    "split_seed", "opens_at", "deadline", "daily_limit", "max_model_mb", "time_limit_s",
    "memory_limit_mb", "features", "device",
}
_REQUIRED = ("slug", "title", "kind", "labels", "input_shape")


def parse_spec(toml_text: str, source: str = "challenge.toml") -> ChallengeSpec:
    """Parse and validate challenge.toml text into a ChallengeSpec, or raise BundleError."""
    src = source
    try:
        raw = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(f"{src}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise BundleError(f"{src}: unknown key '{unknown[0]}' (known: {', '.join(sorted(_FIELDS))})")
    for key in _REQUIRED:
        if key not in raw:
            raise BundleError(f"{src}: key '{key}' is missing")

    slug = _text(src, "slug", raw["slug"])
    if not SLUG_RE.fullmatch(slug):
        raise BundleError(f"{src}: key 'slug' must be 2-64 characters of a-z, 0-9 and '-', got {slug!r}")
    kind = _text(src, "kind", raw["kind"])
    if kind not in KINDS:
        raise BundleError(f"{src}: key 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    device = _text(src, "device", raw.get("device", "any"))
    if device not in DEVICES:
        raise BundleError(f"{src}: key 'device' must be one of {', '.join(DEVICES)}, got {device!r}")
    metric = _text(src, "metric", raw.get("metric", "accuracy"))
    if metric not in METRICS:
        raise BundleError(f"{src}: key 'metric' is unknown: {metric!r} (known: {', '.join(sorted(METRICS))})")

    fraction = raw.get("public_fraction", 0.3)
    if not _is_number(fraction) or not 0 < fraction <= 1:
        raise BundleError(f"{src}: key 'public_fraction' must be a number in (0, 1], got {fraction!r}")
    seed = raw.get("split_seed", 0)
    if not _is_int(seed) or seed < 0:
        raise BundleError(f"{src}: key 'split_seed' must be a non-negative integer, got {seed!r}")

    opens_at = _when(src, "opens_at", raw["opens_at"]) if "opens_at" in raw else None
    deadline = _when(src, "deadline", raw["deadline"]) if "deadline" in raw else None
    if opens_at and deadline and deadline <= opens_at:
        raise BundleError(f"{src}: key 'deadline' ({deadline.isoformat()}) is not after 'opens_at' ({opens_at.isoformat()})")

    shape = _shape(src, raw["input_shape"])
    recipe = _recipe(src, raw["features"]) if "features" in raw else None
    if kind == "spectrogram":
        if recipe is None:
            raise BundleError(f"{src}: a spectrogram challenge needs a [features] table (the feature recipe)")
        recipe = _check_recipe(src, recipe, shape)
    elif recipe is not None:
        raise BundleError(f"{src}: a [features] table is only for kind = \"spectrogram\", not {kind!r}")

    return ChallengeSpec(
        slug=slug,
        title=_text(src, "title", raw["title"]),
        summary=_text(src, "summary", raw.get("summary", ""), empty_ok=True),
        kind=kind,
        labels=_labels(src, raw["labels"]),
        input_shape=shape,
        metric=metric,
        public_fraction=float(fraction),
        split_seed=int(seed),
        opens_at=opens_at,
        deadline=deadline,
        daily_limit=_positive(src, "daily_limit", raw.get("daily_limit", 10), integer=True),
        max_model_mb=_positive(src, "max_model_mb", raw.get("max_model_mb", 20.0), integer=False),
        time_limit_s=_positive(src, "time_limit_s", raw.get("time_limit_s", 60.0), integer=False),
        memory_limit_mb=_positive(src, "memory_limit_mb", raw.get("memory_limit_mb", 2048), integer=True),
        device=device,
        feature_recipe=recipe,
    )


# ---------------------------------------------------------------- data arrays

def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_arrays(spec: ChallengeSpec, x, y, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split's arrays against the spec; return x as float32 and y as int64."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f" or (x.dtype.kind in "iu" and np.can_cast(x.dtype, np.float32, "safe")):
        with np.errstate(over="ignore"):  # values beyond float32 become Inf, refused just below
            x = x.astype(np.float32, copy=False)
    else:
        raise BundleError(f"{source}: x has dtype {x.dtype}, expected float32")
    if y.dtype.kind not in "iu":
        raise BundleError(f"{source}: y has dtype {y.dtype}, expected integer labels (int64)")
    if y.ndim != 1:
        raise BundleError(f"{source}: y has shape {_shape_text(y.shape)}, expected [N]")
    expected = "[N, " + ", ".join(str(d) for d in spec.input_shape) + "]"
    if x.ndim != len(spec.input_shape) + 1 or tuple(x.shape[1:]) != spec.input_shape:
        raise BundleError(f"{source}: x has shape {_shape_text(x.shape)}, expected {expected}")
    if x.shape[0] != y.shape[0]:
        raise BundleError(f"{source}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    if y.shape[0] == 0:
        raise BundleError(f"{source}: has zero rows")
    bad = ~np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
    if bad.any():
        count = int((~np.isfinite(x)).sum())
        raise BundleError(f"{source}: x has {count} NaN or Inf values (first in row {int(np.argmax(bad))})")
    out = (y < 0) | (y >= spec.num_classes)
    if out.any():
        label = int(y[np.argmax(out)])
        raise BundleError(f"{source}: y has label {label} out of range [0, {spec.num_classes})")
    if spec.kind == "image" and (x.min() < 0 or x.max() > 1):
        raise BundleError(
            f"{source}: x has values in [{x.min():g}, {x.max():g}], expected pixels scaled to [0, 1]"
        )
    return x, y.astype(np.int64, copy=False)


def _read_npz(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the x and y arrays of an .npz file, never unpickling anything."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise BundleError(f"{source}: not an .npz archive (np.savez writes one)")
        with data:
            arrays = {}
            for key in ("x", "y"):
                if key not in data.files:
                    raise BundleError(f"{source}: array '{key}' is missing (found: {', '.join(data.files) or 'none'})")
                try:
                    arrays[key] = data[key]
                except ValueError:
                    raise BundleError(f"{source}: array '{key}' holds Python objects; save plain numeric arrays") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{source}: not a readable .npz file ({exc})") from None
    return arrays["x"], arrays["y"]


def _skip(entry: Path) -> bool:
    """Return True for hidden files and the debris zip tools add (__MACOSX, .DS_Store)."""
    return entry.name.startswith(".") or entry.name == "__MACOSX"


def _decode(path: Path, source: str, spec: ChallengeSpec) -> np.ndarray:
    """Return the model input of one PNG or WAV file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            from podium.images import read_png

            arr = read_png(path, channels=spec.input_shape[0])
        else:
            from podium.features import log_mel, read_wav

            waveform, rate = read_wav(path)
            arr = log_mel(waveform, rate, spec.feature_recipe)
    except Exception as exc:  # any decoder failure is a fault of this file; report it by name
        raise BundleError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from None
    arr = np.asarray(arr)
    if tuple(arr.shape) != spec.input_shape:
        raise BundleError(f"{source}: gives an input of shape {_shape_text(arr.shape)}, expected {_shape_text(spec.input_shape)}")
    return arr


def _read_folders(folder: Path, source: str, spec: ChallengeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Return x and y from per-label folders of PNG or WAV files (data/<split>/<label>/*)."""
    index = {label: i for i, label in enumerate(spec.labels)}
    xs, ys, suffixes = [], [], set()
    entries = sorted(e for e in folder.iterdir() if not _skip(e))
    if not entries:
        raise BundleError(f"{source}: has no label folders")
    for entry in entries:
        where = f"{source}/{entry.name}"
        if not entry.is_dir():
            raise BundleError(f"{where}: expected only folders named after labels in {source}")
        if entry.name not in index:
            raise BundleError(f"{where}: unknown label folder (labels: {', '.join(spec.labels)})")
        files = sorted(f for f in entry.iterdir() if not _skip(f))
        if not files:
            raise BundleError(f"{where}: empty label folder")
        for path in files:
            suffix = path.suffix.lower()
            if not path.is_file() or suffix not in (".png", ".wav"):
                raise BundleError(f"{where}/{path.name}: unsupported file (expected .png or .wav files)")
            suffixes.add(suffix)
            if len(suffixes) > 1:
                raise BundleError(f"{where}/{path.name}: mixes .png and .wav files in one bundle")
            if suffix == ".wav" and spec.feature_recipe is None:
                raise BundleError(f"challenge.toml: WAV data needs a [features] table (the feature recipe), see {where}/{path.name}")
            xs.append(_decode(path, f"{where}/{path.name}", spec))
            ys.append(index[entry.name])
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def _load_split(root: Path, name: str, spec: ChallengeSpec, required: bool):
    """Return validated (x, y) of data/<name>.npz or data/<name>/<label>/, or (None, None) when optional and absent."""
    npz, folder = root / "data" / f"{name}.npz", root / "data" / name
    if npz.exists() and folder.exists():
        raise BundleError(f"data/{name}.npz: data/{name}/ exists too; keep one form of the {name} data")
    if npz.exists():
        source = f"data/{name}.npz"
        x, y = _read_npz(npz, source)
    elif folder.is_dir():
        source = f"data/{name}"
        x, y = _read_folders(folder, source, spec)
    elif required:
        raise BundleError(f"data/{name}.npz: file is missing (give data/{name}.npz or folders data/{name}/<label>/)")
    else:
        return None, None
    return check_arrays(spec, x, y, source)


def _read_text(path: Path, source: str) -> str:
    """Return a file's UTF-8 text, or raise BundleError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_bundle(root: Path) -> Bundle:
    """Read and validate a whole challenge bundle directory; raise BundleError naming the fault."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory")
    toml_path = root / "challenge.toml"
    if not toml_path.is_file():
        raise BundleError("challenge.toml: file is missing")
    spec = parse_spec(_read_text(toml_path, "challenge.toml"))
    readme_path = root / "README.md"
    readme = _read_text(readme_path, "README.md") if readme_path.is_file() else ""
    spec = dataclasses.replace(spec, readme=readme)
    test_x, test_y = _load_split(root, "test", spec, required=True)
    train_x, train_y = _load_split(root, "train", spec, required=False)
    if spec.public_fraction < 1 and public_mask(test_y, spec.public_fraction, spec.split_seed).all():
        raise BundleError(
            f"data/test: the private split is empty ({test_y.shape[0]} rows with public_fraction "
            f"{spec.public_fraction}); add test rows or set public_fraction = 1.0"
        )
    starter = root / "starter"
    return Bundle(spec, test_x, test_y, train_x, train_y, starter if starter.is_dir() else None, root)


# ---------------------------------------------------------------- writing

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
