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


def register(app) -> None:
    """Make the filters available to every template as |dt and |score."""
    app.jinja_env.filters.update(dt=time_html, score=score_text)
