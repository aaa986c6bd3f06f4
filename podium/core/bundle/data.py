"""Challenge bundles, part two: load and validate the data arrays and the whole bundle folder."""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from podium.core.bundle.spec import BundleError, ChallengeSpec, parse_spec
from podium.core.split import public_mask


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
    notes: list[str] = field(default_factory=list)  # what publishing did that the instructor should hear


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_arrays(spec: ChallengeSpec, x, y, source: str, notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate one split's arrays against the spec; return x as float32 and y as int64.

    Other float (and small integer) inputs are cast to float32, the contract's dtype; `notes` hears of it.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind == "f" or (x.dtype.kind in "iu" and np.can_cast(x.dtype, np.float32, "safe")):
        if x.dtype != np.float32 and notes is not None:
            notes.append(f"{source}: x is {x.dtype}; cast to float32, the dtype models receive "
                         "(save it as float32 to silence this)")
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
            from podium.core.images import read_png

            arr = read_png(path, channels=spec.input_shape[0])
        else:
            from podium.core.features import log_mel, read_wav

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


def _load_split(root: Path, name: str, spec: ChallengeSpec, required: bool, notes: list[str]):
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
        notes = None  # decoded PNG and WAV files are Podium's own arrays: their dtype is no news
    elif required:
        raise BundleError(f"data/{name}.npz: file is missing (give data/{name}.npz or folders data/{name}/<label>/)")
    else:
        return None, None
    return check_arrays(spec, x, y, source, notes)


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
    notes: list[str] = []
    test_x, test_y = _load_split(root, "test", spec, required=True, notes=notes)
    train_x, train_y = _load_split(root, "train", spec, required=False, notes=notes)
    if spec.public_fraction < 1 and public_mask(test_y, spec.public_fraction, spec.split_seed).all():
        raise BundleError(
            f"data/test: the private split is empty ({test_y.shape[0]} rows with public_fraction "
            f"{spec.public_fraction}); add test rows or set public_fraction = 1.0"
        )
    starter = root / "starter"
    return Bundle(spec, test_x, test_y, train_x, train_y, starter if starter.is_dir() else None, root, notes)
