"""Podium: grading service for classroom CNN mini-challenges.

One import root, four layers that only look down (checked by `lint-imports`, see pyproject.toml):
podium.core (domain and infrastructure shared by all) < podium.server (web) | podium.worker (grading) |
podium.challenges (bundled challenges) < podium.cli (the `podium` command).
"""
