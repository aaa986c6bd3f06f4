"""A challenge's cost budgets: whether a measured model fits, and the reason when it does not."""
from __future__ import annotations


def mflops(flops: int | float) -> float:
    """FLOPs as MFLOPs."""
    return flops / 1e6


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value >= 1 else f"{value:.3g}"


def over_budget(*, params: int | None, flops_per_input: int | None, max_params: int | None,
                max_mflops: float | None) -> str | None:
    """Why a model breaks a budget ("1,204,356 parameters, over this challenge's budget of 50,000"), or None."""
    reasons = []
    if max_params is not None and params is not None and params > max_params:
        reasons.append(f"{params:,} parameters, over this challenge's budget of {max_params:,}")
    if max_mflops is not None and flops_per_input is not None and mflops(flops_per_input) > max_mflops:
        reasons.append(f"{_number(mflops(flops_per_input))} MFLOPs per input, over this challenge's budget of "
                       f"{_number(max_mflops)} MFLOPs")
    if not reasons:
        return None
    return "; ".join(reasons) + "; make the model smaller (fewer or narrower layers, a larger stride or pooling early)"


def report(*, params: int | None, flops_per_input: int | None, max_params: int | None,
           max_mflops: float | None) -> list[str]:
    """Lines for `podium check`: each measured cost against its budget (or "no budget")."""
    lines = []
    if params is not None:
        budget = f"budget {max_params:,}" if max_params is not None else "no budget"
        verdict = "" if max_params is None else (": OVER" if params > max_params else ": fits")
        lines.append(f"parameters: {params:,} ({budget}{verdict})")
    if flops_per_input is not None:
        budget = f"budget {_number(max_mflops)} MFLOPs" if max_mflops is not None else "no budget"
        verdict = "" if max_mflops is None else (": OVER" if mflops(flops_per_input) > max_mflops else ": fits")
        lines.append(f"MFLOPs per input: {_number(mflops(flops_per_input))} ({budget}{verdict})")
    return lines
