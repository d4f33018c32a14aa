# Two commands for a newcomer: `make run` and `make test`. Both bootstrap what they need:
# a private copy of uv (the package manager) and the locked virtual environment.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_LINK_MODE := copy

.PHONY: install run test bench lint lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/vodhub dev

test: install
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light)  # the gateway e2e test
	command -v ffprobe >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg)  # the segment tests' second player
	command -v promtool >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus)  # promtool: the alert rule tests
	$(VENV)/bin/pytest

bench: install
	command -v ffmpeg >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg)  # the reference
	$(VENV)/bin/pytest tests/bench -o python_files='bench_*.py' -s

lint: install
	$(VENV)/bin/ruff check .

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
