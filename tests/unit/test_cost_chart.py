"""The score-against-MFLOPs scatter: one circle per measured entry, the front marked, the sample bounded."""
from __future__ import annotations

import re

from podium.server.cost_chart import mflops, scatter_svg
from podium.server.pareto import PLOT_CAP, Point


def circles(svg: str) -> list[tuple[str, bool]]:
    return [(m.group(2), "front" in m.group(1)) for m in re.finditer(r'<circle class="([^"]*)" data-user="([^"]*)"', svg)]


def test_points_and_front_marks():
    pts = [Point("ann", 0.90, 1_000_000), Point("bob", 0.85, 2_000_000), Point("cyd", 0.95, 40_000_000),
           Point("dan", 0.50, None)]
    svg = str(scatter_svg(pts))
    assert sorted(circles(svg)) == [("ann", True), ("bob", False), ("cyd", True)]
    assert 'class="front-line"' in svg and "2 of 3 entries on the Pareto front" in svg
    assert "0.1 MFLOPs" not in svg and "1 MFLOPs" in svg and "100 MFLOPs" in svg  # log decades 1..100


def test_names_are_escaped_and_nothing_is_drawn_without_costs():
    assert '&lt;b&gt;' in str(scatter_svg([Point("<b>", 0.5, 10)]))
    assert str(scatter_svg([Point("a", 0.5, None)])) == ""


def test_a_large_class_draws_a_bounded_sample():
    pts = [Point(f"s{i}", (i % 97) / 100, 1000 * (1 + i % 13)) for i in range(5000)]
    assert len(circles(str(scatter_svg(pts)))) <= PLOT_CAP + 13


def test_mflops_format():
    assert mflops(2_440_000) == "2.44 MFLOPs" and mflops(1_234_560_000) == "1,234.56 MFLOPs"
