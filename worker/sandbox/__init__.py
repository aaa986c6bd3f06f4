"""Scoring child processes and their confinement."""
