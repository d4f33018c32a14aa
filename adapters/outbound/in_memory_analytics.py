"""The analytics consumer's writer in memory, into InMemoryVideoCatalog: same contract as
SqlAnalytics (offsets and event ids remembered, each batch applied at once under the lock)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from application.analytics import CO_VIEWS_KEPT, Position, plan_views
from application.integration_events import VideoViewed


class InMemoryAnalytics:
    def __init__(self, catalog: InMemoryVideoCatalog) -> None:
        self.catalog = catalog
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.seen: set[str] = set()

    def record_views(self, consumer: str, views: Sequence[tuple[Position, VideoViewed | None]]) -> int:
        catalog = self.catalog
        with catalog._lock:
            new_views: list[VideoViewed] = []
            for position, view in views:
                key = (consumer, position.topic, position.partition)
                if position.offset <= self.offsets.get(key, -1):
                    continue
                self.offsets[key] = position.offset
                if view is not None and view.event_id not in self.seen:
                    self.seen.add(view.event_id)
                    new_views.append(view)
            effects = plan_views(new_views, catalog.history)
            for video_id, views_of_video in effects.views.items():
                catalog.bump(video_id, "view_count", views_of_video)
            for day, count in effects.per_day.items():
                catalog.views_per_day[day] += count
            for (video_id, other_id), count in effects.co_views.items():
                catalog.co_views[video_id][other_id] += count
        return len(new_views)

    def prune_co_views(self, keep: int = CO_VIEWS_KEPT) -> None:
        """Each video keeps its `keep` most shared audiences."""
        with self.catalog._lock:
            for video_id, others in self.catalog.co_views.items():
                kept = sorted(others.items(), key=lambda item: item[1], reverse=True)[:keep]
                self.catalog.co_views[video_id] = defaultdict(int, kept)
