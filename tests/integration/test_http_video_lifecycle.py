"""Editing, deleting, the audit trail and the status stream of a video over HTTP."""

from __future__ import annotations

import pytest

from tests.fixtures.api import bearer, login, register
from tests.integration.test_http_accounts import assert_problem


@pytest.fixture
def uploaded(client, uploader, small_clip) -> str:
    response = client.post("/api/videos/upload", headers=uploader, files={"file": ("a.mp4", small_clip, "video/mp4")})
    return response.json()["id"]


@pytest.fixture
def bob(client) -> dict:
    register(client, "bob")
    return bearer(login(client, "bob"))


def test_owner_edits_details(client, uploader, uploaded):
    response = client.patch(f"/api/videos/{uploaded}", headers=uploader,
                            json={"title": "Renamed", "tags": ["X", "y"], "visibility": "private"})
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["tags"], response.json()["visibility"]) == (
        "Renamed", ["x", "y"], "private")


def test_others_may_not_edit_but_moderators_may(client, uploader, uploaded, bob):
    assert_problem(client.patch(f"/api/videos/{uploaded}", headers=bob, json={"title": "Mine"}), 403)
    bob_id = client.get("/api/users/me", headers=bob).json()["id"]
    client.put(f"/api/users/{bob_id}/roles", headers=uploader, json={"roles": ["moderator"]})
    as_moderator = bearer(login(client, "bob"))
    assert client.patch(f"/api/videos/{uploaded}", headers=as_moderator, json={"title": "Moderated"}).status_code == 200


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "t" * 201}, {"visibility": "world"},
                                  {"tags": ["bad\x00"]}, {"tags": "not-a-list"}])
def test_invalid_edits_are_422(client, uploader, uploaded, body):
    assert_problem(client.patch(f"/api/videos/{uploaded}", headers=uploader, json=body), 422)


def test_delete_hides_the_video_at_once(client, uploader, uploaded, bob):
    assert_problem(client.delete(f"/api/videos/{uploaded}", headers=bob), 403)
    assert client.delete(f"/api/videos/{uploaded}", headers=uploader).status_code == 204
    assert_problem(client.get(f"/api/videos/{uploaded}", headers=uploader), 404)
    assert_problem(client.delete(f"/api/videos/{uploaded}", headers=uploader), 404)
    assert_problem(client.get(f"/api/videos/stream/{uploaded}", headers=uploader), 404)


def test_history_is_the_audit_trail_for_owner_and_staff(client, uploader, uploaded, bob):
    client.patch(f"/api/videos/{uploaded}", headers=uploader, json={"title": "Second"})
    history = client.get(f"/api/videos/{uploaded}/history", headers=uploader).json()
    assert [(entry["type"], entry["version"]) for entry in history] == [("Uploaded", 1), ("DetailsEdited", 2)]
    assert history[1]["payload"]["title"] == "Second" and history[0]["timestamp"]
    assert_problem(client.get(f"/api/videos/{uploaded}/history", headers=bob), 403)


def test_status_events_start_with_the_current_status_and_end_when_final(client, vodhub, uploader, uploaded):
    video = vodhub.videos.get_aggregate(__import__("uuid").UUID(uploaded))
    video.start_processing()
    video.record_failure("corrupt", retryable=False)
    vodhub.videos.save(video)
    response = client.get(f"/api/videos/{uploaded}/events", headers=uploader)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert "event: status\r\ndata: failed" in response.text


def test_status_events_follow_changes(client, vodhub, uploader, uploaded):
    import threading
    import time
    import uuid

    def process_later() -> None:
        time.sleep(0.7)
        video = vodhub.videos.get_aggregate(uuid.UUID(uploaded))
        video.start_processing()
        vodhub.videos.save(video)
        time.sleep(0.7)
        video.record_failure("corrupt", retryable=False)
        vodhub.videos.save(video)

    threading.Thread(target=process_later).start()
    text = client.get(f"/api/videos/{uploaded}/events", headers=uploader).text
    events = sse_events(text)
    assert [data for kind, data in events if kind == "status"] == ["uploaded", "processing", "failed"]
    # While processing, its progress follows the status change (no plan yet: nothing done).
    assert events[2] == ("progress", '{"progress":0.0}')


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) of each Server-Sent Event in a response body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", "message"), fields["data"]))
    return events


def test_status_events_of_an_unknown_video_are_404(client, uploader):
    assert_problem(client.get("/api/videos/00000000-0000-0000-0000-000000000001/events", headers=uploader), 404)


def test_losing_a_concurrent_save_is_409_not_500(client, vodhub, uploader, uploaded, monkeypatch):
    save = vodhub.videos.save

    def lose_the_race(video, *args, **kwargs):
        rival = vodhub.videos.get_aggregate(video.id)  # another request edits it first
        rival.edit_details(rival.owner_id, ("user",), title="the rival's title")
        save(rival)
        return save(video, *args, **kwargs)

    monkeypatch.setattr(vodhub.videos, "save", lose_the_race)
    problem = assert_problem(client.patch(f"/api/videos/{uploaded}", headers=uploader, json={"title": "x"}), 409)
    assert "retry" in problem["detail"]


def test_a_failed_video_is_retried_by_its_owner_and_others_get_409_or_404(client, vodhub, uploader, uploaded, bob):
    import uuid

    assert_problem(client.post(f"/api/videos/{uploaded}/retry", headers=uploader), 409)
    video = vodhub.videos.get_aggregate(uuid.UUID(uploaded))
    video.start_processing()
    video.record_failure("the network fell over", retryable=True)
    vodhub.videos.save(video)
    assert_problem(client.post(f"/api/videos/{uploaded}/retry", headers=bob), 403)
    retried = client.post(f"/api/videos/{uploaded}/retry", headers=uploader)
    assert retried.status_code == 202 and retried.json()["status"] == "uploaded"
    assert "failure_reason" not in retried.json() or retried.json()["failure_reason"] is None
