"""Podium grading worker (Celery) and scoring."""
