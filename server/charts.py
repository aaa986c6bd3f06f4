"""Server-side SVG chart of the best public score over time (no JavaScript library, no CDN)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

PALETTE = ["#1f5fbf", "#d1495b", "#2a9d8f", "#e9a03b", "#7b4fb8", "#3d8f3d", "#c0582c", "#4a6fa5"]
BASELINE_COLOR = "#8a93a6"


def _ticks(lo: float, hi: float) -> tuple[float, float, float]:
    """A y range and step on round numbers that holds [lo, hi] with 3 to 10 grid lines."""
    eps = 1e-9
    for step in (0.1, 0.05, 0.02):
        y0, y1 = math.floor(lo / step + eps) * step, math.ceil(hi / step - eps) * step
        if (y1 - y0) / step >= 3 - eps:
            return y0, y1, step
    step = 0.05
    y1 = max(math.ceil(hi / step - eps) * step, 4 * step)
    return max(0.0, min(math.floor(lo / step + eps) * step, y1 - 4 * step)), y1, step


@dataclass(frozen=True)
class ChartLine:
    """One line of the progress chart in words: the chart's text alternative."""

    label: str
    best: float
    reached_at: datetime
    first: float
    improvements: int
    baseline: bool


def chart_table(series: list[tuple[str, list[tuple[datetime, float]], bool]]) -> list[ChartLine]:
    """What each line of progress_svg shows, as table rows: best score, when reached, where it started, steps up."""
    rows = [ChartLine(label, pts[-1][1], pts[-1][0], pts[0][1], len(pts) - 1, baseline)
            for label, pts, baseline in series if pts]
    return sorted(rows, key=lambda r: (-r.best, r.reached_at))


def progress_svg(series: list[tuple[str, list[tuple[datetime, float]], bool]], now: datetime,
                 width: int = 960, height: int = 320) -> Markup:
    """A step chart: one line per (label, points, is_baseline), each held flat until `now`."""
    points = [p for _, pts, _ in series for p in pts]
    if not points:
        return Markup("")
    left, right, top, bottom = 56, 190, 16, 36
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(now.timestamp(), t0 + 60)
    y0, y1, step = _ticks(min(p[1] for p in points), max(p[1] for p in points))
    short = (t1 - t0) < 86400  # within a day the axis shows times only
    short_attr = ' data-short="1"' if short else ""
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg" '
           f'aria-label="Best public score over time (the same data as a table follows the chart)">']
    for i in range(int(round((y1 - y0) / step)) + 1):
        v = y0 + step * i
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{v:.2f}</text>')
    for i in range(4):
        t = t0 + (t1 - t0) * i / 3
        iso = datetime.fromtimestamp(t, tz=now.tzinfo).isoformat()
        anchor = "start" if i == 0 else "end" if i == 3 else "middle"
        out.append(f'<text x="{x(t):.1f}" y="{height - 12}" text-anchor="{anchor}" class="axis" '
                   f'data-localtime="{iso}"{short_attr}>'
                   f'{iso[11:16] if short else iso[5:16].replace("T", " ")}</text>')
    color_i = 0
    for n, (label, pts, baseline) in enumerate(series):
        if not pts:
            continue
        color = BASELINE_COLOR if baseline else PALETTE[color_i % len(PALETTE)]
        color_i += 0 if baseline else 1
        path = [f"M{x(pts[0][0].timestamp()):.1f},{y(pts[0][1]):.1f}"]
        for (_, _prev), (when, v) in zip(pts, pts[1:]):
            path.append(f"H{x(when.timestamp()):.1f}V{y(v):.1f}")
        path.append(f"H{x(t1):.1f}")
        dash = ' stroke-dasharray="6 4"' if baseline else ""
        out.append(f'<path d="{"".join(path)}" fill="none" stroke="{color}" stroke-width="3"{dash}/>')
        for when, v in pts:
            out.append(f'<circle cx="{x(when.timestamp()):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>')
        ly = top + 8 + n * 22
        out.append(f'<line x1="{width - right + 16}" x2="{width - right + 40}" y1="{ly}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="3"{dash}/><text x="{width - right + 46}" y="{ly + 5}" class="legend">'
                   f'{escape(label[:18])} {pts[-1][1]:.3f}</text>')
    out.append("</svg>")
    return Markup("".join(out))
