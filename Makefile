# Two commands: `make demo` runs Podium on this machine, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-slow lint venv bench clean constraints

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/podium demo

# The layering contract (core < server | worker | challenges < cli) and the linter, then the whole suite.
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m bench.run

# After a dependency change in pyproject.toml: pin what a fresh venv resolves to, once the suite passes on it.
constraints:
	rm -rf /tmp/podium-constraints && $(PYTHON) -m venv /tmp/podium-constraints
	/tmp/podium-constraints/bin/pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; /tmp/podium-constraints/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf /tmp/podium-constraints

clean:
	rm -rf var .pytest_cache test-artifacts
