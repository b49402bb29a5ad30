# Podium: two commands do everything — `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNPOD_VENV := .venv-runpod
TORCH_VERSION := 2.13.0
RUNPOD_VERSION := 1.12.0
REDIS_PORT ?= 6379

.PHONY: demo up test lint bench soak fuzz redis clean help deb-packages venv criu

help:
	@echo "make demo   - set up, start a gateway and a worker, generate an image, save it"
	@echo "make test   - set up and run the whole test suite (unit, contract, API, e2e, compat);"
	@echo "             plain \`pytest\` runs the fast set (unit, contract, API, CLI) in minutes"
	@echo "make up     - start the gateway (foreground)"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make soak   - ~10 minutes of mixed load with kill -9, on SQLite and Redis"
	@echo "make fuzz   - the schemathesis fuzz at random, 500 examples per operation (prints its seed)"
	@echo "make lint   - ruff check + format check + mypy (strict)"

# The main venv. torch is installed first and pinned, so that no other package pulls a
# CUDA build (pip takes the CPU wheel that lies on this kind of machine's disk).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -q -e ".[sd,redis,dev,ray]"
	touch $@

# The runpod SDK pins many packages: it lives in its own venv, used only by the tests.
$(RUNPOD_VENV)/.installed:
	$(PYTHON) -m venv $(RUNPOD_VENV)
	$(RUNPOD_VENV)/bin/python -m pip install -q --upgrade pip
	$(RUNPOD_VENV)/bin/python -m pip install -q "runpod==$(RUNPOD_VERSION)"
	touch $@

venv: $(VENV)/.installed

redis:
	@$(PY) -c "import redis,sys; redis.Redis(port=$(REDIS_PORT), socket_connect_timeout=1).ping()" 2>/dev/null \
	  || redis-server --daemonize yes --bind 127.0.0.1 --port $(REDIS_PORT) --save "" --appendonly no
	@for i in $$(seq 50); do $(PY) -c "import redis; redis.Redis(port=$(REDIS_PORT), socket_connect_timeout=1).ping()" 2>/dev/null && exit 0; sleep 0.1; done; echo "Redis did not start" >&2; exit 1

# Debian packages the tests need: Redis, Chromium for the browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own), and podman with runc
# and mmdebstrap for the container tests (tests/images builds their images from nothing);
# catatonit is what `podman run --init` runs as PID 1 (only a Recommends of podman).
deb-packages:
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v chromium >/dev/null || missing="$$missing chromium chromium-driver"; \
	  command -v podman >/dev/null || missing="$$missing podman"; \
	  command -v runc >/dev/null || missing="$$missing runc"; \
	  command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	  command -v catatonit >/dev/null || missing="$$missing catatonit"; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# CRIU >= 4 for snapshot cold starts (docs/snapshots.md): Debian 12's 3.17 fails on this
# kernel, so 4.1.1 is built once from Debian's own source package and cached in
# ~/.cache/podium (tools/build-criu.sh; a system criu >= 4 is used as it is).
criu:
	@tools/build-criu.sh >/dev/null

test: $(VENV)/.installed $(RUNPOD_VENV)/.installed deb-packages criu
	@$(MAKE) --no-print-directory redis
	$(PY) -m pytest -q -m ""

demo: $(VENV)/.installed
	$(PY) -m podium.demo

up: $(VENV)/.installed
	$(VENV)/bin/podium serve

bench: $(VENV)/.installed
	@$(MAKE) --no-print-directory redis
	$(PY) bench/control_plane.py

soak: $(VENV)/.installed
	@$(MAKE) --no-print-directory redis
	cd bench && ../$(PY) soak.py

fuzz: $(VENV)/.installed
	PODIUM_FUZZ_EXAMPLES=$${PODIUM_FUZZ_EXAMPLES:-500} PODIUM_FUZZ_SEED=$${PODIUM_FUZZ_SEED:-random} $(PY) -m pytest -q -s -m "" -o timeout=3600 tests/e2e/test_fuzz.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(RUNPOD_VENV) .pytest_cache .ruff_cache
