"""The Pareto front of score against cost: entries no other entry beats on both at once."""
from __future__ import annotations

from dataclasses import dataclass

PLOT_CAP = 200  # most points a cost chart draws: the top by score, plus the whole front


@dataclass(frozen=True)
class Point:
    """One competitor's ranking entry: a label, its public score and its FLOPs per input (None: not measured)."""

    key: str
    score: float
    flops: int | None


def dominates(a: Point, b: Point) -> bool:
    """True when a is at least as good as b on score and cost, and strictly better on one."""
    return a.score >= b.score and a.flops <= b.flops and (a.score > b.score or a.flops < b.flops)


def front(points: list[Point]) -> list[Point]:
    """The measured points nobody dominates, cheapest first (equal points are all on the front)."""
    measured = sorted((p for p in points if p.flops is not None), key=lambda p: (p.flops, -p.score, p.key))
    out: list[Point] = []
    best = float("-inf")
    for p in measured:
        # Sorted by cost then score: p is dominated exactly when a cheaper-or-equal point scored more,
        # or an equally cheap one scored more (which sorts first); a tie with the last front point stays.
        if p.score > best or (out and p.score == out[-1].score and p.flops == out[-1].flops):
            out.append(p)
            best = max(best, p.score)
    return out


def sample(points: list[Point], cap: int = PLOT_CAP) -> list[Point]:
    """The points a chart draws: the front plus the best-scoring others, at most cap (or the front, if larger)."""
    on_front = front(points)
    keys = {p.key for p in on_front}
    others = sorted((p for p in points if p.flops is not None and p.key not in keys), key=lambda p: (-p.score, p.key))
    return on_front + others[:max(0, cap - len(on_front))]
