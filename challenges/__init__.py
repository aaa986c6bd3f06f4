"""Bundled challenges and the scripts that build their data."""
