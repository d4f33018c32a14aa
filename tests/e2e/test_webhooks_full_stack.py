"""Webhooks on the production shape: `vodhub api`, `relay`, `worker` and `notifier` as separate
processes on PostgreSQL, Redis, SeaweedFS and the Kafka-protocol broker. An upload reaches a
receiver on 127.0.0.1 as signed events in order, and a notifier killed while a delivery waits
for its retry picks it up again after a restart, with the same webhook-id."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.e2e.test_dev_playback import upload
from tests.e2e.test_full_stack import production_env  # noqa: F401 (fixture)
from tests.e2e.test_worker_group import Worker
from tests.fixtures.processes import VODHUB, vodhub_process
from tests.media_factory import write_clip


class Notifier:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("VODHUB_")} | env
        self.log = (cwd / "notifier.log").open("ab")
        self.process = subprocess.Popen([VODHUB, "notifier"], cwd=cwd, env=environment, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def wait_for_retry(base_url: str, headers: dict, webhook_id: str, timeout: float = 20) -> None:
    """Until the failed attempt is recorded and its retry scheduled."""
    deadline = time.monotonic() + timeout
    while True:
        items = httpx.get(f"{base_url}/api/webhooks/{webhook_id}/deliveries", headers=headers).json()["items"]
        if any(item["attempt"] == 1 and item["next_attempt_at"] for item in items):
            return
        assert time.monotonic() < deadline, f"no retry scheduled: {items}"
        time.sleep(0.05)


def test_an_upload_reaches_the_receiver_signed_and_in_order_across_a_notifier_restart(
    tmp_path, production_env, webhook_receiver,  # noqa: F811
):
    env = {**production_env, "VODHUB_WEBHOOKS_ALLOW_HTTP": "true", "VODHUB_WEBHOOKS_ALLOW_PRIVATE": "true",
           "VODHUB_WEBHOOKS_FIRST_RETRY_S": "4"}
    clip = write_clip(tmp_path / "clip.mp4", width=320, height=180, seconds=2).read_bytes()
    worker = notifier = None
    try:
        with vodhub_process("api", cwd=tmp_path, env=env, timeout=90) as base_url, \
                vodhub_process("relay", cwd=tmp_path, env=env, health=False):
            worker, notifier = Worker("worker", tmp_path, env), Notifier(tmp_path, env)
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            created = httpx.post(f"{base_url}/api/webhooks", headers=headers, json={
                "url": webhook_receiver.url(), "events": ["video.processing", "video.playable", "video.ready"]})
            assert created.status_code == 201, created.text
            webhook_receiver.statuses = [500]  # the first delivery fails and waits for its retry…
            video_id = upload(base_url, headers, clip, title="Signed")
            (failed,) = webhook_receiver.wait_for(1, timeout=60)
            wait_for_retry(base_url, headers, created.json()["id"])
            notifier.stop(signal.SIGKILL)  # …while its notifier dies: the retry lives in the database only
            notifier = Notifier(tmp_path, env)
            received = webhook_receiver.wait_for(3, timeout=120)
            while Webhook(created.json()["secret"]).verify(received[-1].body, received[-1].headers)["type"] != "video.ready":
                received = webhook_receiver.wait_for(len(received) + 1, timeout=120)
            log = httpx.get(f"{base_url}/api/webhooks/{created.json()['id']}/deliveries", headers=headers).json()
    finally:
        for process in (notifier, worker):
            if process is not None:
                process.stop()
    signer = Webhook(created.json()["secret"])
    bodies = [signer.verify(request.body, request.headers) for request in received]
    assert received[1].headers["webhook-id"] == failed.headers["webhook-id"]
    assert bodies[0] == bodies[1] and bodies[0]["type"] == "video.processing"
    types = [body["type"] for body in bodies[1:]]
    assert types == ["video.processing", "video.playable", "video.ready"]
    assert bodies[2]["data"]["playable"] is True and bodies[2]["data"]["status"] == "processing"
    assert {body["data"]["id"] for body in bodies} == {video_id}
    assert bodies[-1]["data"]["playable"] is True and bodies[-1]["data"]["renditions"]
    attempts = {item["event_type"]: item["attempt"] for item in log["items"]}
    assert (attempts["video.processing"], attempts["video.playable"], attempts["video.ready"]) == (2, 1, 1)
