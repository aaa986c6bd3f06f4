"""Budget reasons name the measured value and the budget; a model at or under a budget fits."""
from __future__ import annotations

from podium.core.budgets import over_budget, report


def test_over_the_params_budget_names_both_numbers():
    reason = over_budget(params=1_204_356, flops_per_input=10, max_params=50_000, max_mflops=None)
    assert reason.startswith("1,204,356 parameters, over this challenge's budget of 50,000")


def test_over_the_flops_budget_names_mflops_per_input():
    reason = over_budget(params=10, flops_per_input=12_345_678, max_params=None, max_mflops=5)
    assert reason.startswith("12.35 MFLOPs per input, over this challenge's budget of 5 MFLOPs")


def test_over_both_budgets_names_both():
    reason = over_budget(params=60_000, flops_per_input=6_000_000, max_params=50_000, max_mflops=5.5)
    assert "60,000 parameters" in reason and "6 MFLOPs per input, over this challenge's budget of 5.50 MFLOPs" in reason


def test_exactly_at_the_budget_fits_and_no_budget_never_fails():
    assert over_budget(params=50_000, flops_per_input=5_000_000, max_params=50_000, max_mflops=5) is None
    assert over_budget(params=10**9, flops_per_input=10**12, max_params=None, max_mflops=None) is None
    assert over_budget(params=None, flops_per_input=None, max_params=1, max_mflops=1) is None


def test_the_check_report_says_fits_or_over():
    assert report(params=12_000, flops_per_input=2_440_000, max_params=50_000, max_mflops=2) == [
        "parameters: 12,000 (budget 50,000: fits)", "MFLOPs per input: 2.44 (budget 2 MFLOPs: OVER)"]
    assert report(params=12, flops_per_input=None, max_params=None, max_mflops=None) == ["parameters: 12 (no budget)"]
