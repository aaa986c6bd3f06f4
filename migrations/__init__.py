"""Alembic migrations, shipped as package data and run by `podium db upgrade` (podium.core.migrate)."""
