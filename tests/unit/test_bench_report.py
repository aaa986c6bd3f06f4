"""make bench rewrites bench/RESULTS.md: the sections written by hand survive, the measured ones are replaced."""
from __future__ import annotations

from bench import report

OLD = """# Grading speed: benchmark results

## Summary

| old measured row |

## Cost of measuring (issue 16; by hand, not written by `make bench`)

The A/B table, measured apart.

<!-- board-scale:begin -->
## (e) The leaderboard at scale (issue 21)

old board rows
<!-- board-scale:end -->

## Notes

- old note
"""


def test_sections_written_by_hand_are_kept_and_measured_ones_are_not():
    kept = "\n".join(report.by_hand_sections(OLD))
    assert kept.startswith("## Cost of measuring") and "The A/B table, measured apart." in kept
    assert "old measured row" not in kept and "old board rows" not in kept and "old note" not in kept
