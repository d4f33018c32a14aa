"""`vodhub api` with VODHUB_WORKERS: one command, several worker processes on one port."""

from __future__ import annotations

import time

import httpx

from tests.fixtures.processes import vodhub_process

START_TIMEOUT_S = 240  # each worker bootstraps its own app; slow on a loaded machine


def test_api_serves_from_several_worker_processes(tmp_path):
    env = {"VODHUB_WORKERS": "2", "VODHUB_DATA_DIR": str(tmp_path / "var"), "VODHUB_RATE_LIMITS": "off"}
    log = tmp_path / "api.log"
    with vodhub_process("api", cwd=tmp_path, env=env, timeout=START_TIMEOUT_S) as base_url:
        deadline = time.monotonic() + START_TIMEOUT_S
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        for _ in range(20):
            assert httpx.get(f"{base_url}/health/live", timeout=10).status_code == 200
        metrics = httpx.get(f"{base_url}/metrics", timeout=10)
        assert metrics.status_code == 200 and "vodhub_http_requests_total" in metrics.text
    assert log.read_text().count("Started server process") == 2  # none restarted
