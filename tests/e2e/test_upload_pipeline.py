"""Upload end to end over real processes: `vodhub api` on PostgreSQL and SeaweedFS, `vodhub relay`
to the Kafka-protocol broker; and a client that vanishes mid-upload against `vodhub dev`."""

from __future__ import annotations

import socket
import time
import uuid

import anyio
import httpx

from application.integration_events import VideoUploaded, decode
from tests.e2e.test_accounts_walkthrough import walk_through
from tests.fixtures.processes import vodhub_process
from tests.integration.test_relay_kafka import consume


def test_upload_through_the_api_reaches_s3_postgres_and_kafka(
    tmp_path, postgres_url, postgres_schema, s3_server, s3_bucket, kafka_broker, kafka_topic_prefix, small_clip
):
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}",
        "VODHUB_S3_ENDPOINT": s3_server.endpoint, "VODHUB_S3_BUCKET": s3_bucket, "VODHUB_S3_PREFIX": prefix,
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "VODHUB_TOPIC_VIDEO_UPLOADED": f"{kafka_topic_prefix}-uploaded",
        "VODHUB_TOPIC_VIDEO_PROCESSED": f"{kafka_topic_prefix}-processed",
        "VODHUB_TOPIC_TRANSCODE_TASKS": f"{kafka_topic_prefix}-tasks",
        "VODHUB_DATA_DIR": str(tmp_path / "data"),
    }
    with vodhub_process("api", cwd=tmp_path, env=env) as base_url, \
            vodhub_process("relay", cwd=tmp_path, env=env, health=False):
        tokens = walk_through(base_url)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        response = httpx.post(f"{base_url}/api/videos/upload", headers=headers,
                              files={"file": ("clip.mp4", small_clip, "video/mp4")}, data={"title": "E2E"})
        assert response.status_code == 202, response.text
        video_id = response.json()["id"]
        ready = httpx.get(f"{base_url}/health/ready").json()["checks"]
        assert {"event_store", "read_model", "object_storage", "kafka"} <= ready.keys()
        assert set(ready.values()) == {"ok"}
        (record,) = anyio.run(consume, kafka_broker.bootstrap_servers, f"{kafka_topic_prefix}-uploaded", 1)
    event = decode(record.value, VideoUploaded)
    assert (event.video_id, event.size, event.raw_key) == (video_id, len(small_clip), f"raw/{video_id}/original.mp4")
    stored = httpx.get(f"{s3_server.endpoint}/{s3_bucket}/{prefix}/raw/{video_id}/original.mp4")
    assert stored.content == small_clip


def test_a_client_vanishing_mid_upload_leaves_no_object_and_no_video(tmp_path, small_clip):
    with vodhub_process("dev", cwd=tmp_path, env={}) as base_url:
        tokens = walk_through(base_url)
        host, port = base_url.removeprefix("http://").split(":")
        boundary = "b0undary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n").encode()
        request = (
            f"POST /api/videos/upload HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {tokens['access_token']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 50_000_000}\r\n\r\n"
        ).encode() + head + small_clip
        with socket.create_connection((host, int(port))) as connection:
            connection.sendall(request)
            time.sleep(1.0)  # the server is now streaming the part into storage
        deadline = time.monotonic() + 10
        raw = tmp_path / "var" / "objects" / "raw"
        while time.monotonic() < deadline and raw.exists() and any(p.is_file() for p in raw.rglob("*")):
            time.sleep(0.2)
        assert not raw.exists() or not any(p.is_file() for p in raw.rglob("*"))
        listing = httpx.get(f"{base_url}/health/live")
        assert listing.status_code == 200
    import sqlite3

    with sqlite3.connect(tmp_path / "var" / "videos.sqlite3") as db:
        assert db.execute("select count(*) from stored_events").fetchone() == (0,)
