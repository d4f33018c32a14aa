# Two commands for a newcomer: `make run` and `make test`. Both bootstrap what they need:
# a private copy of uv (the package manager) and the locked virtual environment.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_LINK_MODE := copy

.PHONY: install run test bench chaos lint lock clean vendor image-test

# The web client's pinned browser libraries (committed, so `make run` needs no Node) and
# axe-core for the accessibility test. `make vendor` fetches them again with npm.
HLS_JS_VERSION := 1.7.4
TUS_JS_VERSION := 4.3.1
AXE_CORE_VERSION := 4.14.1
WEB_VENDOR := adapters/inbound/http/web/static/vendor
TEST_VENDOR := tests/e2e/vendor

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
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)  # the web client's browser tests
	command -v redis-server >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server)  # the TLS tests' own redis-server
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)  # the TLS tests' private cluster
	$(VENV)/bin/pytest  # the chaos suite too, in its bounded form (30 s of chaos; `make chaos` for 15 minutes)

bench: install
	command -v ffmpeg >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg)  # the reference
	command -v wrk >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk)  # HTTP load
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light)  # the gateway and the static reference
	$(VENV)/bin/pytest tests/bench -o python_files='bench_*.py' -s

# Build the Dockerfile for real and run the README walk-through in the image (not part of `make
# test`: it builds a Debian base with debootstrap and the image, minutes of CPU and ~2 GB of disk
# under /var/tmp/vodhub-image-test). Needs root, for dockerd and debootstrap.
image-test: install
	command -v dockerd >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io)
	command -v debootstrap >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap)
	nice -n 10 $(VENV)/bin/pytest tests/image/image_check.py -v

chaos: install  # the chaos suite for 15 minutes (CHAOS_SECONDS=30 for a short run)
	CHAOS_SECONDS=$${CHAOS_SECONDS:-900} $(VENV)/bin/pytest tests/chaos -s

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

lock: $(UV)
	$(UV) lock

vendor:
	rm -rf .vendor && mkdir -p .vendor $(WEB_VENDOR) $(TEST_VENDOR)
	cd .vendor && npm pack --silent hls.js@$(HLS_JS_VERSION) tus-js-client@$(TUS_JS_VERSION) axe-core@$(AXE_CORE_VERSION)
	for pkg in hls.js-$(HLS_JS_VERSION) tus-js-client-$(TUS_JS_VERSION) axe-core-$(AXE_CORE_VERSION); do \
		mkdir -p .vendor/$$pkg && tar -xzf .vendor/$$pkg.tgz -C .vendor/$$pkg; done
	cp .vendor/hls.js-$(HLS_JS_VERSION)/package/dist/hls.min.mjs $(WEB_VENDOR)/hls.min.mjs
	cp .vendor/hls.js-$(HLS_JS_VERSION)/package/LICENSE $(WEB_VENDOR)/hls.js.LICENSE
	cp .vendor/tus-js-client-$(TUS_JS_VERSION)/package/dist/tus.min.js $(WEB_VENDOR)/tus.min.js
	cp .vendor/tus-js-client-$(TUS_JS_VERSION)/package/LICENSE $(WEB_VENDOR)/tus-js-client.LICENSE
	cp .vendor/axe-core-$(AXE_CORE_VERSION)/package/axe.min.js $(TEST_VENDOR)/axe.min.js
	cp .vendor/axe-core-$(AXE_CORE_VERSION)/package/LICENSE $(TEST_VENDOR)/axe-core.LICENSE
	sed -i '/sourceMappingURL/d' $(WEB_VENDOR)/hls.min.mjs $(WEB_VENDOR)/tus.min.js
	printf 'hls.js %s\ntus-js-client %s\n' $(HLS_JS_VERSION) $(TUS_JS_VERSION) > $(WEB_VENDOR)/VERSIONS
	printf 'axe-core %s\n' $(AXE_CORE_VERSION) > $(TEST_VENDOR)/VERSIONS
	rm -rf .vendor

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
