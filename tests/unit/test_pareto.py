"""The Pareto front of score against FLOPs, and the bounded sample a chart draws."""
from __future__ import annotations

import itertools
import random

from podium.server.pareto import Point, dominates, front, sample


def keys(points):
    return [p.key for p in points]


def test_front_keeps_only_undominated_points_cheapest_first():
    pts = [Point("a", 0.90, 1000), Point("b", 0.95, 5000), Point("c", 0.85, 2000), Point("d", 0.99, 90000),
           Point("e", 0.80, 500)]
    assert keys(front(pts)) == ["e", "a", "b", "d"]  # c costs more than a and scores less


def test_equal_cost_keeps_the_higher_score_only():
    assert keys(front([Point("lo", 0.7, 100), Point("hi", 0.8, 100)])) == ["hi"]


def test_equal_score_keeps_the_cheaper_only():
    assert keys(front([Point("dear", 0.8, 900), Point("cheap", 0.8, 100)])) == ["cheap"]


def test_identical_points_are_both_on_the_front():
    assert keys(front([Point("x", 0.8, 100), Point("y", 0.8, 100), Point("z", 0.5, 100)])) == ["x", "y"]


def test_unmeasured_points_are_left_out():
    assert keys(front([Point("n", 0.99, None), Point("m", 0.5, 10)])) == ["m"]
    assert front([Point("n", 0.99, None)]) == []
    assert front([]) == []


def test_front_matches_the_definition_on_random_points():
    rng = random.Random(7)
    for _ in range(200):
        pts = [Point(str(i), rng.choice([0.5, 0.6, 0.7, 0.8]), rng.choice([10, 20, 30, None])) for i in range(8)]
        measured = [p for p in pts if p.flops is not None]
        expected = {p.key for p in measured if not any(dominates(q, p) for q in measured)}
        assert set(keys(front(pts))) == expected
        for a, b in itertools.combinations(front(pts), 2):
            assert not dominates(a, b) and not dominates(b, a)


def test_sample_is_bounded_and_always_holds_the_front():
    pts = [Point(f"s{i}", i / 1000, 1000 + i) for i in range(500)]  # each dearer one scores more: all on front
    assert len(sample(pts, cap=50)) == 500
    pts = [Point(f"s{i}", i / 1000, 10_000 - i) for i in range(500)]  # s499 dominates every other point
    got = sample(pts, cap=50)
    assert len(got) == 50 and got[0].key == "s499"
    assert "s450" in keys(got) and "s449" not in keys(got)  # the rest are the top by score
    assert [p.key for p in sample([Point("n", 0.9, None), Point("m", 0.1, 5)])] == ["m"]
