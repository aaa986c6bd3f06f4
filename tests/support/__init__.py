"""Helpers shared by tests: live stacks (live), hosts and S3 (hosts), models (models), bundles, classroom, processes.

Fixtures stay in tests/conftest.py; no test module imports another test module.
"""
