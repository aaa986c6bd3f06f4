"""Challenge bundles, part one: parse and validate challenge.toml into a ChallengeSpec."""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from dataclasses import dataclass, field

from podium.core.metrics import METRICS

KINDS = ("image", "spectrogram", "other")
DEVICES = ("any", "gpu", "cpu")  # where scoring runs; "gpu" waits for a GPU worker (podium.core.queueing)
SLUG_RE = re.compile(r"[a-z0-9-]{2,64}")
TITLE_MAX = 200  # the challenges.title column


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
    team_size: int = 1
    device: str = "any"
    ranking: str = "score"
    max_params: int | None = None
    max_mflops: float | None = None
    feature_recipe: dict | None = field(default=None, hash=False)
    readme: str = ""

    @property
    def num_classes(self) -> int:
        """Return the number of classes (the count of labels)."""
        return len(self.labels)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _text(src, key, v, *, empty_ok=False, max_len: int | None = None) -> str:
    if not isinstance(v, str):
        raise BundleError(f"{src}: key '{key}' must be a string, got {type(v).__name__}")
    if not empty_ok and not v.strip():
        raise BundleError(f"{src}: key '{key}' must not be empty")
    if max_len is not None and len(v) > max_len:
        raise BundleError(f"{src}: key '{key}' has {len(v)} characters, at most {max_len} are allowed")
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
    from podium.core.features import input_shape, validate_recipe

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
    "memory_limit_mb", "features", "device", "team_size", "ranking", "max_params", "max_mflops",
}
RANKINGS = ("score", "pareto")
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
    ranking = _text(src, "ranking", raw.get("ranking", "score"))
    if ranking not in RANKINGS:
        raise BundleError(f"{src}: key 'ranking' must be one of {', '.join(RANKINGS)}, got {ranking!r}")
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
        title=_text(src, "title", raw["title"], max_len=TITLE_MAX),
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
        team_size=_positive(src, "team_size", raw.get("team_size", 1), integer=True),
        device=device,
        ranking=ranking,
        max_params=_positive(src, "max_params", raw["max_params"], integer=True) if "max_params" in raw else None,
        max_mflops=_positive(src, "max_mflops", raw["max_mflops"], integer=False) if "max_mflops" in raw else None,
        feature_recipe=recipe,
    )
