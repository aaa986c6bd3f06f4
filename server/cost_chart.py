"""Server-side SVG scatter of public score against MFLOPs per input (log x), with the Pareto front marked."""
from __future__ import annotations

import math

from markupsafe import Markup, escape

from podium.server.charts import _ticks
from podium.server.pareto import Point, front, sample

FRONT_COLOR = "#d1495b"
OTHER_COLOR = "#1f5fbf"


def mflops(flops: int) -> str:
    """FLOPs per input as the page writes them: 2440000 -> '2.44 MFLOPs'."""
    return f"{flops / 1e6:,.2f} MFLOPs"


def scatter_svg(points: list[Point], width: int = 960, height: int = 320) -> Markup:
    """Score (y) against MFLOPs (log x) of a bounded sample of points; front points carry class 'front'."""
    drawn = sample(points)
    if not drawn:
        return Markup("")
    on_front = {p.key for p in front(drawn)}
    left, right, top, bottom = 56, 24, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    # log10 of MFLOPs; a model of 0 FLOPs sits at the axis's left end (log of 0 has no place).
    logs = [math.log10(max(p.flops, 1) / 1e6) for p in drawn]
    x0, x1 = math.floor(min(logs)), max(math.ceil(max(logs)), math.floor(min(logs)) + 1)
    y0, y1, step = _ticks(min(p.score for p in drawn), max(p.score for p in drawn))

    def x(p: Point) -> float:
        return left + (math.log10(max(p.flops, 1) / 1e6) - x0) / (x1 - x0) * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * plot_h

    out = [f'<svg class="chart cost-chart" viewBox="0 0 {width} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="Public score against MFLOPs per input, log scale; '
           f'{len(on_front)} of {len(drawn)} entries on the Pareto front">']
    for i in range(int(round((y1 - y0) / step)) + 1):
        v = y0 + step * i
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{v:.2f}</text>')
    for e in range(x0, x1 + 1):
        xe = left + (e - x0) / (x1 - x0) * plot_w
        label = f"{10.0 ** e:g}"
        out.append(f'<line x1="{xe:.1f}" x2="{xe:.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>'
                   f'<text x="{xe:.1f}" y="{height - 12}" text-anchor="middle" class="axis">{label} MFLOPs</text>')
    line = sorted((p for p in drawn if p.key in on_front), key=lambda p: (p.flops, -p.score))
    if len(line) > 1:
        d = "".join(f'{"M" if i == 0 else "L"}{x(p):.1f},{y(p.score):.1f}' for i, p in enumerate(line))
        out.append(f'<path class="front-line" d="{d}" fill="none" stroke="{FRONT_COLOR}" stroke-width="2"/>')
    for p in sorted(drawn, key=lambda p: p.key in on_front):  # front drawn last, on top
        is_front = p.key in on_front
        cls, color, r = ("point front", FRONT_COLOR, 6) if is_front else ("point", OTHER_COLOR, 4)
        out.append(f'<circle class="{cls}" data-user="{escape(p.key)}" data-flops="{p.flops}" data-score="{p.score}" '
                   f'cx="{x(p):.1f}" cy="{y(p.score):.1f}" r="{r}" fill="{color}">'
                   f'<title>{escape(p.key)}: {p.score:.3f} at {mflops(p.flops)}'
                   f'{" (Pareto front)" if is_front else ""}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))
