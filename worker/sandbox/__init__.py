"""Scoring child processes and their confinement."""

from podium.worker.sandbox.pool import RunResult, SandboxUnavailable, ScoringPool

__all__ = ["RunResult", "SandboxUnavailable", "ScoringPool"]
