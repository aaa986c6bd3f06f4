"""Grading-speed benchmark (issue 7): `python -m bench.run` or `make bench`; not part of the test suite."""
