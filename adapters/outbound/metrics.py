"""Prometheus metrics of the pipeline behind the api (worker, relay, consumers), recorded
through `PrometheusMetrics` so that use cases and runners never import prometheus_client.

The metric objects are module globals, as prometheus_client expects (one registration per
process). With several processes on one host, set PROMETHEUS_MULTIPROC_DIR to an empty
directory shared by them before they start: prometheus_client then keeps the values in
files there and the api's /metrics adds up every process (see adapters/inbound/http/metrics.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Metric
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("vodhub.metrics")

TRANSCODE_SECONDS = Histogram(
    "vodhub_transcode_duration_seconds", "Wall time to encode one rung of a video's ladder.", ["rung"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
PROCESSING_OUTCOMES = Counter(
    "vodhub_processing_outcomes", "Processing attempts by outcome (processed, failed, retried, dead_lettered).",
    ["outcome"],
)
RELAY_PUBLISHED = Gauge(
    "vodhub_relay_published_notification_id", "The last notification id the relay has published.", ["log"],
    multiprocess_mode="livemostrecent",
)
RELAY_LATEST = Gauge(
    "vodhub_relay_latest_notification_id", "The latest notification id in the event store's log.", ["log"],
    multiprocess_mode="livemostrecent",
)
RELAY_LAG = Gauge(
    "vodhub_relay_lag_notifications", "Notifications recorded but not yet published (latest - published).", ["log"],
    multiprocess_mode="livemostrecent",
)
# From the upload accepted (the Uploaded event) to the first rendition streaming, and to every
# rendition, the MP4 and the storyboard done; a retried video counts from its upload too.
VIDEO_MILESTONE_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200)
TIME_TO_PLAYABLE = Histogram(
    "vodhub_time_to_playable_seconds", "Seconds from an upload accepted to the video playable (its first rendition).",
    buckets=VIDEO_MILESTONE_BUCKETS,
)
TIME_TO_READY = Histogram(
    "vodhub_time_to_ready_seconds", "Seconds from an upload accepted to the video ready (every rendition, MP4, storyboard).",
    buckets=VIDEO_MILESTONE_BUCKETS,
)
MILESTONES = {"playable": TIME_TO_PLAYABLE, "ready": TIME_TO_READY}
DEAD_LETTERED = Counter(
    "vodhub_dead_lettered_messages", "Messages a consumer group gave up on and copied to a dead-letter topic.",
    ["group", "topic"],
)
CONSUMER_LAG = Gauge(
    "vodhub_consumer_lag_messages", "Messages behind the end of a partition, per consumer group.",
    ["group", "topic", "partition"], multiprocess_mode="livemostrecent",
)

BULKHEAD_REJECTED = Counter(
    "vodhub_bulkhead_rejected", "Requests refused at once (503) because a bulkhead's queue was full.", ["bulkhead"],
)


def bulkhead_rejected(bulkhead: str) -> None:
    """A bulkhead (password hashing, media inspection, …) refused a call."""
    BULKHEAD_REJECTED.labels(bulkhead=bulkhead).inc()

SWEPT = Counter(
    "vodhub_sweep_redriven_videos", "Videos the sweep re-drove, by action (retried, given_up, tasks_redriven, "
    "abandoned, announced_again).", ["action"],
)


class PrometheusMetrics:
    """The recording API; stateless, so any number of instances share the same metrics."""

    def transcode_finished(self, rung: str, seconds: float) -> None:
        """One rung (e.g. `720p`) took `seconds` to encode."""
        TRANSCODE_SECONDS.labels(rung=rung).observe(seconds)

    def processing_outcome(self, outcome: str) -> None:
        """A processing attempt ended: processed, failed, retried or dead_lettered."""
        PROCESSING_OUTCOMES.labels(outcome=outcome).inc()

    def relay_position(self, published: int, latest: int, log: str = "videos") -> None:
        """Where the relay is in a notification log, and where the log ends."""
        RELAY_PUBLISHED.labels(log=log).set(published)
        RELAY_LATEST.labels(log=log).set(latest)
        RELAY_LAG.labels(log=log).set(max(latest - published, 0))

    def video_reached(self, milestone: str, seconds: float) -> None:
        """A video became `playable` or `ready` `seconds` after its upload was accepted."""
        MILESTONES[milestone].observe(max(seconds, 0.0))

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """How many messages a consumer group is behind on one partition."""
        CONSUMER_LAG.labels(group=group, topic=topic, partition=str(partition)).set(max(lag, 0))

    def dead_lettered(self, group: str, topic: str) -> None:
        """The group gave up on a message and copied it to the dead-letter `topic`."""
        DEAD_LETTERED.labels(group=group, topic=topic).inc()

    def swept(self, action: str) -> None:
        """The sweep re-drove one video left behind."""
        SWEPT.labels(action=action).inc()


UNFINISHED_STATUSES = ("uploaded", "processing")


class UnfinishedVideosCollector:
    """Videos not yet processed, read from the catalog at each scrape: how many per status and
    how long the longest-waiting one has been there. A video that stays `processing` for hours
    has a worker stuck on it; one that stays `uploaded` was never picked up."""

    def __init__(
        self, unfinished: Callable[[], Mapping[str, tuple[int, datetime]]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._unfinished = unfinished
        self._now = now

    def describe(self) -> list[Metric]:
        return []  # so registering does not query the catalog

    def collect(self) -> Iterator[Metric]:
        try:
            unfinished = self._unfinished()
        except Exception:  # the read model is down: report nothing rather than fail the scrape
            log.warning("metrics: cannot count unfinished videos", exc_info=True)
            return
        now = self._now()
        count = GaugeMetricFamily("vodhub_videos_unfinished", "Videos uploaded or processing, by status.",
                                  labels=["status"])
        oldest = GaugeMetricFamily(
            "vodhub_videos_unfinished_oldest_age_seconds",
            "Seconds since the longest-waiting unfinished video of a status last changed (0: none).", labels=["status"],
        )
        for status in UNFINISHED_STATUSES:
            videos, since = unfinished.get(status, (0, None))
            count.add_metric([status], videos)
            oldest.add_metric([status], max((now - since).total_seconds(), 0.0) if since else 0.0)
        yield count
        yield oldest


def watch_unfinished_videos(unfinished: Callable[[], Mapping[str, tuple[int, datetime]]]) -> Callable[[], None]:
    """Report unfinished videos on this process's /metrics; returns the function that stops it."""
    collector = UnfinishedVideosCollector(unfinished)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


class InMemoryMetrics:
    """The twin for tests and for processes that expose no /metrics: it keeps the last values."""

    def __init__(self) -> None:
        self.transcodes: list[tuple[str, float]] = []
        self.outcomes: list[str] = []
        self.relay: dict[str, tuple[int, int]] = {}
        self.lag: dict[tuple[str, str, int], int] = {}
        self.dead_letters: list[tuple[str, str]] = []
        self.milestones: list[tuple[str, float]] = []

    def transcode_finished(self, rung: str, seconds: float) -> None:
        self.transcodes.append((rung, seconds))

    def video_reached(self, milestone: str, seconds: float) -> None:
        self.milestones.append((milestone, seconds))

    def processing_outcome(self, outcome: str) -> None:
        self.outcomes.append(outcome)

    def relay_position(self, published: int, latest: int, log: str = "videos") -> None:
        self.relay[log] = (published, latest)

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        self.lag[(group, topic, partition)] = lag

    def dead_lettered(self, group: str, topic: str) -> None:
        self.dead_letters.append((group, topic))

VIEW_BUFFER_PENDING = Gauge(
    "vodhub_view_buffer_pending", "Counted views waiting in the api's buffer for the broker.",
    multiprocess_mode="livesum",
)
VIEWS_DROPPED = Counter("vodhub_views_dropped", "Counted views dropped because the api's buffer was full.")
VIEWS_PUBLISHED = Counter("vodhub_views_published", "Counted views published to the broker.")
VIEWS_COUNTED = Counter("vodhub_views_counted", "Views the analytics consumer counted (duplicates excluded).")


class PrometheusViewMetrics:
    """The beacon buffer's and the analytics consumer's metrics."""

    def view_buffer(self, pending: int, dropped: int = 0, published: int = 0) -> None:
        VIEW_BUFFER_PENDING.set(pending)
        if dropped:
            VIEWS_DROPPED.inc(dropped)
        if published:
            VIEWS_PUBLISHED.inc(published)

    def views_counted(self, count: int) -> None:
        VIEWS_COUNTED.inc(count)


class InMemoryViewMetrics:
    def __init__(self) -> None:
        self.pending = 0
        self.dropped = 0
        self.published = 0
        self.counted = 0

    def view_buffer(self, pending: int, dropped: int = 0, published: int = 0) -> None:
        self.pending = pending
        self.dropped += dropped
        self.published += published

    def views_counted(self, count: int) -> None:
        self.counted += count
