"""Likes and comments through the projector, and views through the analytics recorder, into the
read model: on SQLite files, on PostgreSQL, and the same scenarios in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from adapters.outbound.in_memory_analytics import InMemoryAnalytics
from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from adapters.outbound.sql_analytics import SqlAnalytics
from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import CO_VIEW_LOOKBACK, Position
from application.integration_events import VideoViewed
from application.projections import CatalogProjection
from domain.comments import Comment
from domain.likes import Like
from entrypoints.projector import catalog_follower
from tests.integration.test_catalog_projection import OWNER, CatalogScenarios, upload

FAN, CRITIC = uuid.uuid4(), uuid.uuid4()
DAY = datetime(2026, 11, 30, 12, tzinfo=UTC)


def view(video, user, at=DAY, event_id=None) -> VideoViewed:
    return VideoViewed(event_id=event_id or str(uuid.uuid4()), video_id=str(video.id), user_id=str(user), viewed_at=at)


def at(offset: int, partition: int = 0) -> Position:
    return Position("views", partition, offset)


class AudienceScenarios:
    videos = CatalogScenarios.videos

    # --- likes and comments through the projection -----------------------------------------

    def test_likes_are_counted_once_per_user(self, videos, catalog, project):
        liked, other = upload(videos, "liked"), upload(videos, "other")
        fan, critic = Like(video_id=liked.id, user_id=FAN), Like(video_id=liked.id, user_id=CRITIC)
        critic.unlike()
        videos.save(fan, critic, Like(video_id=other.id, user_id=FAN))
        project(videos)
        assert catalog.counts(liked.id)[1] == 1 and catalog.liked_among(FAN, [liked.id, other.id]) == {liked.id, other.id}
        assert catalog.liked_among(CRITIC, [liked.id]) == set()
        critic.like()
        videos.save(critic)
        project(videos)
        assert [video.title for video in catalog.list_public(sort="likes").items] == ["liked", "other"]
        assert catalog.get(liked.id).like_count == 2

    def test_comments_keep_their_order_and_deleted_ones_their_place(self, videos, catalog, project):
        video = upload(videos, "talked about")
        first = Comment.post(uuid.uuid4(), video.id, FAN, "first")
        reply = Comment.post(uuid.uuid4(), video.id, OWNER, "reply", parent=first)
        videos.save(first)
        videos.save(reply)
        first.edit(FAN, "first, edited")
        reply.delete(OWNER, ("user",), video_owner_id=OWNER)
        videos.save(first, reply)
        project(videos)
        rows = catalog.comments(video.id).items
        assert [(c.body, c.parent_id, c.deleted) for c, _ in rows] == [
            ("first, edited", None, False), ("", first.id, True)]
        assert rows[0][0].edited_at is not None and catalog.counts(video.id)[2] == 1
        page = catalog.comments(video.id, limit=1)
        assert [c.id for c, _ in catalog.comments(video.id, cursor=page.next_cursor).items] == [reply.id]

    def test_a_deleted_video_takes_its_likes_comments_and_views_along(self, videos, catalog, analytics, project):
        gone, kept = upload(videos, "gone"), upload(videos, "kept")
        videos.save(Like(video_id=gone.id, user_id=FAN), Comment.post(uuid.uuid4(), gone.id, FAN, "hi"))
        analytics.record_views("analytics", [(at(0), view(gone, FAN)), (at(1), view(kept, FAN, DAY + timedelta(1)))])
        gone.delete(OWNER, ("user",))
        videos.save(gone)
        project(videos)
        assert catalog.counts(gone.id) == (0, 0, 0) and catalog.comments(gone.id).items == []
        assert catalog.liked_among(FAN, [gone.id]) == set() and catalog.views_by_day(gone.id) == []
        assert [video.title for video, _ in catalog.watched(FAN).items] == ["kept"]
        assert catalog.co_viewed(kept.id, 10) == []

    # --- views through the analytics recorder --------------------------------------------------

    def test_views_are_counted_exactly_once(self, videos, catalog, analytics, project):
        video = upload(videos, "watched")
        project(videos)
        batch = [(at(0), view(video, FAN)), (at(1), view(video, CRITIC, DAY + timedelta(days=1)))]
        assert analytics.record_views("analytics", batch) == 2
        assert analytics.record_views("analytics", batch) == 0  # redelivered after a lost commit
        again = view(video, FAN, event_id=batch[0][1].event_id)
        assert analytics.record_views("analytics", [(at(2), again), (at(3), None)]) == 0  # published twice; junk
        assert analytics.record_views("analytics", [(at(0, partition=1), view(video, FAN, DAY + timedelta(1)))]) == 1
        assert catalog.counts(video.id)[0] == 3 and catalog.get(video.id).view_count == 3
        assert [(day.date.isoformat(), day.views) for day in catalog.views_by_day(video.id)] == [
            ("2026-11-30", 1), ("2026-12-01", 2)]
        assert analytics.record_views("other-group", batch) == 0  # counted once, whoever reads it

    def test_history_is_one_entry_per_video_newest_first(self, videos, catalog, analytics, project):
        first, second = upload(videos, "first"), upload(videos, "second")
        project(videos)
        analytics.record_views("analytics", [
            (at(0), view(first, FAN, DAY)), (at(1), view(second, FAN, DAY + timedelta(hours=1))),
            (at(2), view(first, FAN, DAY + timedelta(hours=2))), (at(3), view(second, CRITIC)),
        ])
        watched = catalog.watched(FAN)
        assert [(video.title, when) for video, when in watched.items] == [
            ("first", DAY + timedelta(hours=2)), ("second", DAY + timedelta(hours=1))]
        page = catalog.watched(FAN, limit=1)
        assert [video.title for video, _ in catalog.watched(FAN, cursor=page.next_cursor).items] == ["second"]
        catalog.clear_watched(FAN)
        assert catalog.watched(FAN).items == [] and len(catalog.watched(CRITIC).items) == 1

    def test_co_views_count_viewers_who_watched_both(self, videos, catalog, analytics, project):
        a, b, c = upload(videos, "a"), upload(videos, "b"), upload(videos, "c")
        project(videos)
        analytics.record_views("analytics", [(at(0), view(a, FAN)), (at(1), view(b, FAN)), (at(2), view(a, FAN))])
        analytics.record_views("analytics", [(at(3), view(a, CRITIC)), (at(4), view(b, CRITIC)),
                                             (at(5), view(c, CRITIC))])
        assert [video.title for video in catalog.co_viewed(a.id, 10)] == ["b", "c"]
        assert [video.title for video in catalog.co_viewed(c.id, 10)] == ["b", "a"]  # a tie: the newest first
        assert [video.title for video in catalog.similar(a, 10)] == []

    def test_co_views_look_back_a_bounded_number_of_videos(self, videos, catalog, analytics, project):
        watched = [upload(videos, f"v{n}") for n in range(CO_VIEW_LOOKBACK + 2)]
        project(videos)
        analytics.record_views("analytics", [(at(n), view(video, FAN, DAY + timedelta(minutes=n)))
                                             for n, video in enumerate(watched)])
        assert len(catalog.co_viewed(watched[-1].id, 100)) == CO_VIEW_LOOKBACK
        assert watched[0].id not in {video.id for video in catalog.co_viewed(watched[-1].id, 100)}


    def test_co_views_are_bounded_per_video(self, videos, catalog, analytics, project):
        a, b, c = upload(videos, "a"), upload(videos, "b"), upload(videos, "c")
        project(videos)
        analytics.record_views("analytics", [
            (at(0), view(a, FAN)), (at(1), view(b, FAN)), (at(2), view(a, CRITIC)), (at(3), view(b, CRITIC)),
            (at(4), view(c, CRITIC))])
        analytics.prune_co_views(keep=1)
        assert [video.title for video in catalog.co_viewed(a.id, 10)] == ["b"]  # shared by two, c by one
        assert len(catalog.co_viewed(c.id, 10)) == 1


class TestAudienceOnSQLite(AudienceScenarios):
    @pytest.fixture
    def eventstore_env(self, tmp_path) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "events.sqlite3"),
                "SQLITE_LOCK_TIMEOUT": "10"}

    @pytest.fixture
    def catalog(self, tmp_path) -> Iterator[SqlCatalog]:
        catalog = SqlCatalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
        catalog.create_tables()
        yield catalog
        catalog.close()

    @pytest.fixture
    def analytics(self, catalog) -> SqlAnalytics:
        return SqlAnalytics(catalog)

    @pytest.fixture
    def project(self, catalog, eventstore_env):
        def project(source: Application) -> None:
            catalog_follower(catalog, source).catch_up()

        return project


    def test_rebuilding_the_catalog_keeps_the_view_figures(self, videos, catalog, analytics, project):
        video = upload(videos, "seen")
        videos.save(Like(video_id=video.id, user_id=FAN), Comment.post(uuid.uuid4(), video.id, FAN, "hi"))
        project(videos)
        analytics.record_views("analytics", [(at(0), view(video, FAN)), (at(1), view(video, CRITIC))])
        catalog.drop_tables()
        catalog.create_tables()
        project(videos)
        assert catalog.counts(video.id) == (2, 1, 1)
        assert [seen.title for seen, _ in catalog.watched(FAN).items] == ["seen"]


class TestAudienceOnPostgres(TestAudienceOnSQLite):
    @pytest.fixture
    def eventstore_env(self, postgres_eventstore_env: Mapping[str, str]) -> dict[str, str]:
        return dict(postgres_eventstore_env)

    @pytest.fixture
    def catalog(self, postgres_url: str, postgres_schema: str) -> Iterator[SqlCatalog]:
        catalog = SqlCatalog(f"{postgres_url}?schema={postgres_schema}")
        catalog.create_tables()
        yield catalog
        catalog.close()


class TestAudienceInMemory(AudienceScenarios):
    @pytest.fixture
    def eventstore_env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    @pytest.fixture
    def catalog(self) -> InMemoryVideoCatalog:
        return InMemoryVideoCatalog()

    @pytest.fixture
    def analytics(self, catalog) -> InMemoryAnalytics:
        return InMemoryAnalytics(catalog)

    @pytest.fixture
    def project(self, catalog):
        def project(source: Application) -> None:
            projection = CatalogProjection(catalog)
            start = (catalog.max_tracking_id(source.name) or 0) + 1
            for notification in source.recorder.select_notifications(start=start, limit=1000):
                projection.process_event(source.mapper.to_domain_event(notification), Tracking(source.name, notification.id))

        return project
