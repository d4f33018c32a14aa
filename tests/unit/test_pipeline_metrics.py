"""The pipeline's Prometheus metrics that are computed rather than counted: unfinished videos
read from the catalog at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from adapters.outbound.metrics import UnfinishedVideosCollector, watch_unfinished_videos

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def scrape(collector: UnfinishedVideosCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_unfinished_videos_report_counts_and_the_oldest_wait_per_status() -> None:
    collector = UnfinishedVideosCollector(lambda: {"processing": (3, NOW - timedelta(hours=2))}, now=lambda: NOW)

    assert scrape(collector) == {
        'vodhub_videos_unfinished{status="uploaded"}': 0.0,
        'vodhub_videos_unfinished{status="processing"}': 3.0,
        'vodhub_videos_unfinished_oldest_age_seconds{status="uploaded"}': 0.0,
        'vodhub_videos_unfinished_oldest_age_seconds{status="processing"}': 7200.0,
    }


def test_a_read_model_that_is_down_leaves_the_rest_of_the_scrape_alone() -> None:
    def unreachable() -> dict:
        raise ConnectionError("read model down")

    assert scrape(UnfinishedVideosCollector(unreachable, now=lambda: NOW)) == {}


def test_watching_unfinished_videos_puts_them_on_the_process_metrics_until_stopped() -> None:
    stop = watch_unfinished_videos(lambda: {"uploaded": (1, datetime.now(UTC))})
    try:
        assert REGISTRY.get_sample_value("vodhub_videos_unfinished", {"status": "uploaded"}) == 1.0
    finally:
        stop()
    assert REGISTRY.get_sample_value("vodhub_videos_unfinished", {"status": "uploaded"}) is None
