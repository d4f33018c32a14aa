"""The audience on the production shape: `vodhub api`, relay, worker, projector and analytics as
processes on PostgreSQL, Redis, SeaweedFS and the Kafka-protocol broker. Three users watch,
like and comment; counts, sorting, related videos and histories follow within seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.e2e.test_dev_playback import upload
from tests.e2e.test_full_stack import production_env  # noqa: F401 (a fixture)
from tests.e2e.test_worker_group import Worker
from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip

PASSWORD = "correct horse battery"


def sign_up(base_url: str, name: str) -> dict[str, str]:
    httpx.post(f"{base_url}/api/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": PASSWORD}).raise_for_status()
    tokens = httpx.post(f"{base_url}/api/auth/login", json={"username_or_email": name, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def wait_until_ready(base_url: str, headers: dict, video_id: str, timeout: float = 120) -> None:
    def ready() -> None:
        assert httpx.get(f"{base_url}/api/videos/{video_id}", headers=headers).json()["status"] == "ready"

    eventually(ready, timeout)


def eventually(check: Callable[[], object], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_three_viewers_watch_like_and_comment(tmp_path, production_env):  # noqa: F811
    env = {**production_env, "VODHUB_TOPIC_VIDEO_VIEWED": production_env["VODHUB_TOPIC_VIDEO_UPLOADED"] + "-viewed"}
    clip = write_clip(tmp_path / "clip.mp4").read_bytes()
    worker = Worker("worker", tmp_path, env)
    try:
        with vodhub_process("api", cwd=tmp_path, env=env) as base_url, \
                vodhub_process("relay", cwd=tmp_path, env=env, health=False), \
                vodhub_process("projector", cwd=tmp_path, env=env, health=False), \
                vodhub_process("analytics", cwd=tmp_path, env=env, health=False):
            owner = sign_up(base_url, "alice")
            viewers = [sign_up(base_url, name) for name in ("bob", "carol", "dave")]
            jazz = upload(base_url, owner, clip, title="Jazz", genre="music", tags="jazz")
            blues = upload(base_url, owner, clip, title="Blues", genre="music", tags="blues")
            hike = upload(base_url, owner, clip, title="Hike", genre="travel")
            for video_id in (jazz, blues, hike):
                wait_until_ready(base_url, owner, video_id)

            watched = {jazz: viewers, blues: viewers[:2], hike: viewers[:1]}
            for video_id, audience in watched.items():
                for headers in audience:
                    for _ in range(2):  # a second beacon within the window is not counted
                        assert httpx.post(f"{base_url}/api/videos/{video_id}/views", headers=headers).status_code == 202
            for headers in viewers[:2]:
                assert httpx.put(f"{base_url}/api/videos/{hike}/like", headers=headers).status_code == 204
            said = httpx.post(f"{base_url}/api/videos/{blues}/comments", headers=viewers[2], json={"body": "Lovely"})
            assert said.status_code == 201

            def counts_are_right() -> None:
                shown = {video_id: httpx.get(f"{base_url}/api/videos/{video_id}", headers=viewers[0]).json()
                         for video_id in (jazz, blues, hike)}
                assert [shown[v]["view_count"] for v in (jazz, blues, hike)] == [3, 2, 1]
                assert (shown[hike]["like_count"], shown[hike]["liked_by_me"]) == (2, True)
                assert shown[blues]["comment_count"] == 1

            eventually(counts_are_right)

            def listed(query: str) -> list[str]:
                items = httpx.get(f"{base_url}/api/videos{query}", headers=viewers[2]).json()["items"]
                return [item["id"] for item in items]

            assert listed("?sort=views") == [jazz, blues, hike]
            assert listed("?sort=likes")[0] == hike
            assert listed("?genre=music&sort=views") == [jazz, blues]
            related = httpx.get(f"{base_url}/api/videos/{jazz}/related", headers=viewers[2]).json()["items"]
            assert [item["id"] for item in related] == [blues, hike]
            history = httpx.get(f"{base_url}/api/users/me/history", headers=viewers[0]).json()["items"]
            assert {item["video"]["id"] for item in history} == {jazz, blues, hike}
            stats = httpx.get(f"{base_url}/api/videos/{jazz}/stats", headers=owner).json()
            assert stats["view_count"] == 3 and sum(day["views"] for day in stats["views_by_day"]) == 3
    finally:
        worker.stop()
