# Two commands from a fresh clone: `make demo` and `make test`. Only python3 and make are assumed;
# everything else (uv, the locked dependencies, the embedded broker) is installed by these rules.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.cityhub-synced
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup chromium demo test lint bench clean

setup: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	# Bytecode compiled once at install: many environments set PYTHONDONTWRITEBYTECODE, and then every
	# process (each Airflow task, each bench child) would compile Airflow and pandas from source again.
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

demo: setup
	$(VENV)/bin/cityhub demo

# Debian's Chromium and ChromeDriver for the portal's browser tests (tests/serving/test_portal_browser.py), only when
# missing: an install that fails (no root, no apt, no network) is reported and the browser tests then skip, saying so.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing Debian's chromium and chromium-driver for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
			|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; } \
			|| echo "could not install chromium (apt-get as root is needed): the browser tests will skip"; \
	fi

# Two workers, whole files each (a file's module fixtures — a live server, a landed lake — are set up once): most
# of the suite's time is waiting on Airflow and the broker, so it finishes in about half the time of one process.
TEST_WORKERS ?= 2
test: setup chromium
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(VENV)/bin/cityhub bench ingest --json

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache
