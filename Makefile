# The two commands: `make run` starts everything, `make test` checks everything.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test faults lint licences notices sbom bench install browser clean

$(STAMP): pyproject.toml constraints.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-nodeps.txt
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
	$(VENV)/bin/lint-imports --no-cache
	DATABASE_URL=postgresql://typecheck@localhost/typecheck REDIS_URL=redis://localhost:1/0 \
	  $(VENV)/bin/mypy .

# Every runtime dependency's licence is on the allow-list in sora_social/licences.py and
# THIRD_PARTY.md is current; `make notices` regenerates its generated section.
licences: install
	$(PY) -m sora_social.licences check

notices: install
	$(PY) -m sora_social.licences notices

# A CycloneDX bill of materials of the runtime environment, written to var/sbom.cdx.json: the
# project's [project].dependencies installed alone in a throwaway venv (no test tools), then read
# by cyclonedx-py.
SBOM_VENV := var/sbom-venv
sbom: install
	rm -rf $(SBOM_VENV) && $(PYTHON) -m venv --without-pip $(SBOM_VENV)
	$(PY) -m sora_social.licences requirements > var/sbom-requirements.txt
	$(VENV)/bin/pip --python $(SBOM_VENV)/bin/python install --quiet -c constraints.txt \
	  -r var/sbom-requirements.txt
	$(VENV)/bin/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
	  -o var/sbom.cdx.json $(SBOM_VENV)
	@echo "wrote var/sbom.cdx.json"

test: install browser lint licences
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest

# The full fault-injection run (a short one is part of `make test`): prints a table of figures.
faults: install
	HF_HUB_OFFLINE=1 $(PY) -m tests.faults

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf var/test var/faults
