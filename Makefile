# The two commands: `make run` starts everything, `make test` checks everything.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-tools install browser clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m sora_social.stack

# Headless Chromium and its driver for the browser tests, from Debian's packages.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# mypy's django-stubs plugin imports the settings: give it URLs so no embedded server starts.
lint: install
	$(VENV)/bin/ruff check .
	DATABASE_URL=postgresql://typecheck@localhost/typecheck REDIS_URL=redis://localhost:1/0 \
	  $(VENV)/bin/mypy .

test: install browser lint
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest

# wrk, the load generator for the throughput benchmark, from Debian's packages.
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: install bench-tools
	$(PY) -m benchmarks

clean:
	rm -rf var/test
