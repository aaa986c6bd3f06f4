"""Podium web application (Flask)."""
