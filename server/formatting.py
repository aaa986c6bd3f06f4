"""Template filters for values shown on many rows: plain functions, because Jinja macros cost ~20 µs a call."""
from __future__ import annotations

from datetime import datetime

from markupsafe import Markup


def time_html(value: datetime | str | None) -> Markup:
    """A <time> element for a datetime or ISO string, shown to the minute in UTC; a dash when empty."""
    if not value:
        return Markup("—")
    if isinstance(value, str):
        iso, shown = value, value[:16].replace("T", " ") + " UTC"
    else:
        iso, shown = value.isoformat(), value.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}">{}</time>').format(iso, shown)


def score_text(value: float | None) -> str:
    """A score with four decimals; a dash when there is none."""
    return "—" if value is None else f"{value:.4f}"


def count_text(value: int | None) -> str:
    """A count with thousands separators (1,204,356); a dash when not measured."""
    return "—" if value is None else f"{value:,}"


def mflops_text(flops: int | None) -> str:
    """FLOPs per input as MFLOPs, two decimals from 1 up (2440000 -> 2.44), three digits under (4656 -> 0.00466);
    a dash when not measured."""
    if flops is None:
        return "—"
    value = flops / 1e6
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.3g}"


def ms_text(value: float | None) -> str:
    """Milliseconds, whole above 10 ms and one decimal under it; a dash when not measured."""
    return "—" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def register(app) -> None:
    """Make the filters available to every template as |dt, |score, |count, |mflops and |ms."""
    app.jinja_env.filters.update(dt=time_html, score=score_text, count=count_text, mflops=mflops_text, ms=ms_text)
