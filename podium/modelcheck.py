"""Static checks on uploaded model files, and the rules on model output.

Shared by the web upload, the grader and `podium check`. Nothing here imports
torch at module level or decompresses anything: the web process imports this.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

EXPORT_RECIPE = (
    "scripted = torch.jit.script(model)  # or torch.jit.trace(model, example)\n"
    "torch.jit.save(scripted, 'model.pt')"
)

MAX_ENTRIES = 10_000
# A deflated entry that claims to inflate more than this many times is a bomb, not a model.
MAX_RATIO = 200
RATIO_MIN_BYTES = 16 * 2**20
BATCH_RTOL = 1e-3
BATCH_ATOL = 1e-4


class ModelRejected(ValueError):
    """A model file or its output breaks the contract; .reason says what to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _pickle_rejection(what: str) -> ModelRejected:
    return ModelRejected(
        f"this file is {what}, not a TorchScript archive; Podium never unpickles uploads. "
        f"Export your model like this:\n{EXPORT_RECIPE}"
    )


def inspect_archive(path, *, max_bytes: int, max_uncompressed_bytes: int = 512 * 2**20) -> None:
    """Refuse a model file by its zip central directory alone (no decompression)."""
    size = os.path.getsize(path)
    if size == 0:
        raise ModelRejected("the file is empty; save your model with:\n" + EXPORT_RECIPE)
    if size > max_bytes:
        raise ModelRejected(
            f"the file is {_mb(size)}, over the {_mb(max_bytes)} limit of this challenge; "
            "use a smaller model"
        )
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise _pickle_rejection("a Python pickle (torch.save of a model or state_dict)")
    if not zipfile.is_zipfile(path):
        raise ModelRejected(
            "the file is not a TorchScript archive (not a zip file). Export your model with:\n"
            + EXPORT_RECIPE
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelRejected(f"the file is a damaged zip archive ({exc}); export it again with:\n{EXPORT_RECIPE}")
    _check_entries(infos, max_uncompressed_bytes)


def _check_entries(infos: list[zipfile.ZipInfo], max_uncompressed_bytes: int) -> None:
    if len(infos) > MAX_ENTRIES:
        raise ModelRejected(f"the archive has {len(infos)} entries, more than {MAX_ENTRIES}; it is not a model export")
    names = [i.filename for i in infos]
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ModelRejected(f"the archive contains an unsafe path {name[:100]!r}; export it again with:\n{EXPORT_RECIPE}")
    total = sum(i.file_size for i in infos)
    if total > max_uncompressed_bytes:
        raise ModelRejected(
            f"the archive unpacks to {_mb(total)}, over the {_mb(max_uncompressed_bytes)} bound; use a smaller model"
        )
    for i in infos:
        if i.file_size > RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ModelRejected(f"the archive entry {i.filename[:100]!r} inflates {i.file_size // max(i.compress_size, 1)}x; it looks like a zip bomb")
    prefixes = {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith("/data.pkl")}
    if not prefixes:
        raise ModelRejected("the zip holds no data.pkl, so it is not a TorchScript archive. Export your model with:\n" + EXPORT_RECIPE)
    if not any(n.startswith(p + "/code/") for p in prefixes for n in names):
        raise _pickle_rejection("a torch.save checkpoint (a pickled model or state_dict: it has no code/)")


def check_scores(scores, n: int, num_classes: int) -> None:
    """Raise ModelRejected unless scores is a finite float32 array of shape [n, num_classes]."""
    if not isinstance(scores, np.ndarray):
        raise ModelRejected(f"forward() must return a single tensor, got {type(scores).__name__}")
    if scores.shape != (n, num_classes):
        got = ", ".join(str(d) for d in scores.shape)
        raise ModelRejected(f"output shape [{got}], expected [{n}, {num_classes}]")
    if scores.dtype != np.float32:
        raise ModelRejected(f"output dtype {scores.dtype}, expected float32 scores")
    if not np.isfinite(scores).all():
        raise ModelRejected("output contains NaN or Inf")


def check_batch_independence(whole: np.ndarray, one_by_one: np.ndarray) -> str | None:
    """Return a problem (with the fix) when scores depend on how inputs are batched."""
    if whole.shape != one_by_one.shape:
        return f"output shape depends on the batch size ({list(whole.shape)} vs {list(one_by_one.shape)}); forward() must work for any batch size B >= 1"
    if np.allclose(whole, one_by_one, rtol=BATCH_RTOL, atol=BATCH_ATOL):
        return None
    worst = float(np.max(np.abs(whole - one_by_one)))
    return (
        f"scores change with the batch size (max difference {worst:.3g}): forward() must treat each sample on "
        "its own; do not compute statistics across the batch (x.mean(0), F.batch_norm with training=True)"
    )


def check_model_file(path, *, challenge: dict | None = None, samples=None, pool=None) -> list[str]:
    """Run every check a model must pass before grading; return problems, each with its fix.

    pool: a started worker.sandbox.ScoringPool to reuse; without one, a pool is started and closed here.
    """
    challenge = challenge or {}
    max_bytes = int(challenge.get("max_model_mb", 100)) * 2**20
    try:
        inspect_archive(path, max_bytes=max_bytes)
    except ModelRejected as exc:
        return [exc.reason]
    try:
        import torch  # noqa: F401  (the dynamic checks need the sandbox, which needs torch)
    except ImportError:
        return []
    if samples is None:
        shape = challenge.get("input_shape")
        if not shape:
            return []
        samples = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    num_classes = int(challenge.get("num_classes") or len(challenge.get("labels", [])) or 0)
    if num_classes <= 0:
        return ["the challenge declares no labels, so the output cannot be checked"]
    from worker.sandbox import ScoringPool

    own = pool is None
    pool = pool or ScoringPool()
    try:
        pool.start()
        return pool.check(
            model_path=str(path),
            samples=np.ascontiguousarray(samples, dtype=np.float32),
            num_classes=num_classes,
            time_limit_s=float(challenge.get("time_limit_s", 60)),
            memory_limit_mb=int(challenge.get("memory_limit_mb", 2048)),
        )
    finally:
        if own:
            pool.close()
