"""The leaderboard's cost view: the rows on the front, the "pareto" ranking keys, and how numbers are written."""
from __future__ import annotations

from types import SimpleNamespace

from podium.server import costs
from podium.server.formatting import count_text, mflops_text, ms_text

ROWS = [{"user": "ann", "public_score": 0.9, "flops_per_input": 5_000_000},
        {"user": "ben", "public_score": 0.9, "flops_per_input": 2_000_000},
        {"user": "cat", "public_score": 0.5, "flops_per_input": 1_000},
        {"user": "dan", "public_score": 0.4, "flops_per_input": 3_000},
        {"user": "eve", "public_score": 0.99, "flops_per_input": None}]


def test_front_rows_are_the_undominated_measured_rows_cheapest_first():
    assert [r["user"] for r in costs.front_rows(ROWS)] == ["cat", "ben"]


def test_the_pareto_ranking_adds_the_front_and_score_does_not():
    assert costs.view(SimpleNamespace(ranking="pareto"), ROWS) == {"ranking": "pareto", "front": ["cat", "ben"]}
    assert costs.view(SimpleNamespace(ranking="score"), ROWS) == {"ranking": "score"}


def test_attach_copies_the_ranking_entrys_cost_onto_each_row():
    rows = [{"user": "ann"}, {"user": "ben"}]
    costs.attach(rows, [SimpleNamespace(params=10, flops_per_input=20), SimpleNamespace(params=None, flops_per_input=None)])
    assert rows == [{"user": "ann", "params": 10, "flops_per_input": 20},
                    {"user": "ben", "params": None, "flops_per_input": None}]


def test_scatter_marks_the_front_and_skips_unmeasured_rows():
    svg = str(costs.scatter(ROWS))
    assert svg.count('class="point front"') == 2 and svg.count("<circle") == 4 and 'data-user="eve"' not in svg
    assert str(costs.scatter([{"user": "x", "public_score": 1.0, "flops_per_input": None}])) == ""


def test_numbers_as_the_pages_write_them():
    assert (count_text(1_204_356), count_text(None)) == ("1,204,356", "—")
    assert (mflops_text(2_440_000), mflops_text(4656), mflops_text(0), mflops_text(None)) == ("2.44", "0.00466", "0.00", "—")
    assert (ms_text(1234.4), ms_text(3.21), ms_text(None)) == ("1,234 ms", "3.2 ms", "—")
