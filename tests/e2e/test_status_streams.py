"""Status streams against a running api: the per-user cap counts streams that are really open,
so a stream the client closed frees its place."""

from __future__ import annotations

import time

import httpx

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import vodhub_process

WAIT_S = 30.0  # the server notices a closed connection soon, not at once


def test_a_closed_stream_frees_its_place_under_the_per_user_cap(tmp_path, small_clip):
    env = {"VODHUB_DATA_DIR": str(tmp_path / "d"), "VODHUB_SSE_STREAMS_PER_USER": "1"}
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url, httpx.Client(timeout=WAIT_S) as client:
        headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
        video = client.post(f"{base_url}/api/videos/upload", headers=headers,
                            files={"file": ("a.mp4", small_clip, "video/mp4")}).json()["id"]
        events = f"{base_url}/api/videos/{video}/events"
        for _ in range(2):  # the second round shows that the first stream's place came back
            deadline = time.monotonic() + WAIT_S
            while True:
                with httpx.stream("GET", events, headers=headers, timeout=WAIT_S) as stream:
                    if stream.status_code == 429 and time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    lines = stream.iter_lines()
                    assert (stream.status_code, next(lines)) == (200, "event: status")
                    refused = client.get(events, headers=headers)
                    assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()
                break
