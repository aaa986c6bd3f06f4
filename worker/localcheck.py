"""`podium check` and the starter kits: the upload's static checks, then the same checks the grader runs, in the sandbox."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from podium.core.budgets import over_budget, report
from podium.core.modelcheck import ModelRejected
from podium.core.modelformat import inspect_model


@dataclass
class LocalCheck:
    """What `podium check` found: problems (each with its fix; empty = ready) and the measured cost lines."""

    problems: list[str]
    costs: list[str] = field(default_factory=list)


def check_model_file(path, *, challenge: dict | None = None, samples=None, pool=None) -> list[str]:
    """Run every check a model must pass before grading; return problems, each with its fix.

    pool: a started podium.worker.sandbox.ScoringPool to reuse; without one, a pool is started and closed here.
    """
    return check_model(path, challenge=challenge, samples=samples, pool=pool).problems


def check_model(path, *, challenge: dict | None = None, samples=None, pool=None) -> LocalCheck:
    """Like check_model_file, and also the model's params and FLOPs against the challenge's budgets."""
    challenge = challenge or {}
    max_bytes = int(challenge.get("max_model_mb", 100)) * 2**20
    try:
        inspect_model(path, max_bytes=max_bytes)
    except ModelRejected as exc:
        return LocalCheck([exc.reason])
    try:
        import torch  # noqa: F401  (the dynamic checks need the sandbox, which needs torch)
    except ImportError:
        return LocalCheck([])
    if samples is None:
        shape = challenge.get("input_shape")
        if not shape:
            return LocalCheck([])
        samples = np.random.default_rng(0).random((8, *shape), dtype=np.float32)
    num_classes = int(challenge.get("num_classes") or len(challenge.get("labels", [])) or 0)
    if num_classes <= 0:
        return LocalCheck(["the challenge declares no labels, so the output cannot be checked"])
    from podium.worker.sandbox import ScoringPool  # torch: only when a dynamic check runs

    own = pool is None
    # The student's own model on their own machine: scored even where this host lacks a confinement layer.
    pool = pool or ScoringPool(allow_incomplete=True)
    try:
        pool.start()
        found = pool.check_report(
            model_path=str(path),
            samples=np.ascontiguousarray(samples, dtype=np.float32),
            num_classes=num_classes,
            time_limit_s=float(challenge.get("time_limit_s", 60)),
            memory_limit_mb=int(challenge.get("memory_limit_mb", 2048)),
        )
    finally:
        if own:
            pool.close()
    cost = {k: found.cost.get(k) for k in ("params", "flops_per_input")}
    budgets = {"max_params": challenge.get("max_params"), "max_mflops": challenge.get("max_mflops")}
    problems = list(found.problems)
    budget = over_budget(**cost, **budgets)
    if budget:
        problems.insert(0, budget)
    lines = report(**cost, **budgets)
    if found.cost.get("error"):
        lines.append(f"the cost could not be measured: {found.cost['error']}")
    return LocalCheck(problems, lines)
