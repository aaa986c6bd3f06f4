"""Scoring child processes and their confinement.

May import podium.core only (the model checks and cost counting); the grader above it is podium.worker.
"""

from podium.worker.sandbox.pool import RunResult, SandboxUnavailable, ScoringPool

__all__ = ["RunResult", "SandboxUnavailable", "ScoringPool"]
