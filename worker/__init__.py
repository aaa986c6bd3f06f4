"""podium.worker: the grading worker (Celery tasks, the reaper) and the sandbox that scores models.

May import podium.core only; never podium.server or podium.cli.
"""
