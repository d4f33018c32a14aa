"""The production shape on this machine: `vodhub api`, `relay`, `worker` and `projector` as
separate processes on PostgreSQL, Redis, SeaweedFS and the Kafka-protocol broker. A video goes
from upload to a player (PyAV over HTTP), shows up in the catalog, and survives a rebuild."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
import pytest

from tests.e2e.test_accounts_walkthrough import walk_through
from tests.e2e.test_dev_playback import decoded_sizes, upload, wait_until_ready
from tests.e2e.test_worker_group import Worker
from tests.fixtures.otlp_collector import CollectedSpan, Collector
from tests.fixtures.processes import free_port, vodhub_process
from tests.media_factory import write_clip


@pytest.fixture
def production_env(tmp_path, postgres_url, postgres_schema, redis_url, redis_prefix, s3_server, s3_bucket,
                   kafka_broker, kafka_topic_prefix):
    return {
        "VODHUB_DATABASE_URL": f"{postgres_url}?schema={postgres_schema}",
        "VODHUB_REDIS_URL": redis_url, "VODHUB_REDIS_PREFIX": redis_prefix,
        "VODHUB_S3_ENDPOINT": s3_server.endpoint, "VODHUB_S3_BUCKET": s3_bucket,
        "VODHUB_S3_PREFIX": f"stack-{uuid.uuid4().hex[:8]}",
        "VODHUB_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "VODHUB_TOPIC_VIDEO_UPLOADED": f"{kafka_topic_prefix}-uploaded",
        "VODHUB_TOPIC_VIDEO_PROCESSED": f"{kafka_topic_prefix}-processed",
        "VODHUB_TOPIC_TRANSCODE_TASKS": f"{kafka_topic_prefix}-tasks",
        "VODHUB_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "VODHUB_DATA_DIR": str(tmp_path / "data"),
    }


def listed(base_url: str, headers: dict, query: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{base_url}/api/videos{query}", headers=headers)
        # While `projector --rebuild` recreates the read model the listing is a 503, not an error.
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200 and (items := response.json()["items"]):
            break
        assert time.monotonic() < deadline, f"nothing listed for {query}"
        time.sleep(0.3)
    return [item["id"] for item in items]


def test_upload_to_playback_across_processes(tmp_path, production_env, postgres_url, postgres_schema, otlp_collector):
    clip = write_clip(tmp_path / "clip.mp4", width=640, height=360, seconds=4).read_bytes()
    metrics_port = free_port()
    # Every process exports its spans to the test's collector; a short batch delay makes them arrive soon.
    production_env = {**production_env, "VODHUB_OTLP_ENDPOINT": otlp_collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "300"}
    worker = Worker("worker", tmp_path, {**production_env, "VODHUB_METRICS_PORT": str(metrics_port)})
    try:
        with vodhub_process("api", cwd=tmp_path, env=production_env) as base_url, \
                vodhub_process("relay", cwd=tmp_path, env=production_env, health=False), \
                vodhub_process("projector", cwd=tmp_path, env=production_env, health=False):
            headers = {"Authorization": f"Bearer {walk_through(base_url)['access_token']}"}
            public = upload(base_url, headers, clip, title="Harbour at dusk", tags="harbour")
            private = upload(base_url, headers, clip, visibility="private")
            video = wait_until_ready(base_url, headers, public)
            wait_until_ready(base_url, headers, private)
            assert [r["name"] for r in video["renditions"]] == ["240p", "360p"]

            assert listed(base_url, headers, "?q=harbour") == [public]  # private ones are never listed
            master = httpx.get(f"{base_url}/api/videos/stream/{public}", headers=headers).headers["location"]
            assert len(decoded_sizes(base_url + master)) == 2
            signed = httpx.get(f"{base_url}/api/videos/stream/{private}?format=mp4", headers=headers)
            assert decoded_sizes(base_url + signed.headers["location"]) == {(640, 360)}
            worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            assert 'vodhub_processing_outcomes_total{outcome="ready"} 2.0' in worker_metrics
            assert 'vodhub_transcode_duration_seconds_count{rung="360p"} 2.0' in worker_metrics
            assert "vodhub_consumer_lag_messages" in worker_metrics
            assert "vodhub_time_to_playable_seconds_count 2.0" in worker_metrics
            assert "vodhub_time_to_ready_seconds_count 2.0" in worker_metrics
            assert_one_trace_per_upload(otlp_collector, public)

        with psycopg.connect(postgres_url, autocommit=True) as db:  # the read model is lost…
            db.execute(f'delete from "{postgres_schema}".catalog_videos')
        with vodhub_process("api", cwd=tmp_path, env=production_env) as base_url, \
                vodhub_process("projector", cwd=tmp_path, env=production_env, health=False, args=("--rebuild",)):
            headers = {"Authorization": f"Bearer {log_in(base_url)}"}
            assert listed(base_url, headers, "?tag=harbour") == [public]  # …and rebuilt from the events
    finally:
        worker.stop()


def assert_one_trace_per_upload(collector: Collector, video_id: str) -> None:
    """The upload's request, the relay's publishes, the worker's plan and tasks and the
    projector's updates are one trace, every span's parent in it, rooted at the request."""

    def trace_of(spans: list[CollectedSpan]) -> list[CollectedSpan]:
        published = [s for s in spans if s.service == "vodhub-relay"
                     and s.attributes.get("messaging.kafka.message.key") == video_id]
        return [s for s in spans if published and s.trace_id == published[0].trace_id]

    spans = trace_of(collector.wait_for(
        lambda spans: any(s.name == "project Video.Processed" for s in trace_of(spans)), timeout=120))
    roots = [(s.service, s.name) for s in spans if not s.parent_span_id]
    assert roots == [("vodhub-api", "POST /api/videos/upload")]
    ids = {s.span_id for s in spans}
    assert all(s.parent_span_id in ids for s in spans if s.parent_span_id), "a span's parent is not in the trace"
    names = {(s.service, s.name) for s in spans}
    assert {("vodhub-worker", "plan"), ("vodhub-worker", "task"), ("vodhub-projector", "project Video.Uploaded"),
            ("vodhub-projector", "project Video.Processed")} <= names
    published = {name for service, name in names if service == "vodhub-relay"}
    assert any(name.endswith("-uploaded") for name in published) and any(name.endswith("-tasks") for name in published)
    # psycopg's instrumentation puts the statements in it too (the api's INSERT of the upload's events).
    assert any(s.service == "vodhub-api" and "postgresql" in (s.attributes.get("db.system"),
                                                             s.attributes.get("db.system.name")) for s in spans)


def log_in(base_url: str) -> str:
    return httpx.post(f"{base_url}/api/auth/login", json={
        "username_or_email": "alice", "password": "correct horse battery"}).json()["access_token"]
