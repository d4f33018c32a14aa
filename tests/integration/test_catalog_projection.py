"""The catalog projection end to end: events recorded by the Videos application, projected by
the projector's log follower into the SQL catalog, queried; on SQLite files and on PostgreSQL, and
the same scenarios on the in-memory catalog."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Mapping
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from sqlalchemy import event

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from adapters.outbound.sql_catalog import SqlCatalog
from application.errors import ValidationError
from application.projections import CatalogProjection
from application.videos import Videos
from domain.media import Manifests, Rendition, Thumbnails
from domain.users import User
from domain.videos import Video
from entrypoints.projector import AccountsLog, VideosLog, catalog_follower

OWNER, OTHER = uuid.uuid4(), uuid.uuid4()
RENDITION = Rendition(name="360p", width=640, height=360, bitrate=800_000)


class SimulatedCrash(Exception):
    pass


def upload(
    videos: Videos, title: str, *, owner: UUID = OWNER, description: str = "", tags: tuple[str, ...] = (),
    visibility: str = "public", ready: bool = True,
) -> Video:
    video = Video.upload(
        uuid.uuid4(), owner, ("user",), title=title, description=description, tags=list(tags),
        visibility=visibility, source_key="raw/k/original.mp4", source_size=5,
        source_content_type="video/mp4", source_sha256="ab" * 32,
    )
    if ready:
        video.start_processing()
        video.record_processed(
            duration_s=3.5, width=640, height=360, renditions=[RENDITION],
            manifests=Manifests(hls="processed/x/cmaf/master.m3u8", dash="processed/x/cmaf/manifest.mpd"),
            thumbnails=Thumbnails(poster="thumbnails/x/poster.jpg"),
        )
    videos.save(video)
    return video


def titles(page) -> list[str]:
    return [item.title for item in page.items]


class CatalogScenarios:
    @pytest.fixture
    def videos(self, eventstore_env: dict[str, str]) -> Iterator[Videos]:
        app = Videos(storage=InMemoryObjectStorage(), inspector=PyAVMediaInspector(), clock=SettableClock(),
                     ids=RandomIdGenerator(), max_upload_bytes=10**9, env=eventstore_env)
        yield app
        app.close()

    def test_lists_public_ready_videos_newest_first(self, videos, catalog, project):
        first, _, third = upload(videos, "first"), upload(videos, "second"), upload(videos, "third")
        private = upload(videos, "private", visibility="private")
        upload(videos, "unlisted", visibility="unlisted")
        upload(videos, "still processing", ready=False)
        project(videos)
        assert titles(catalog.list_public()) == ["third", "second", "first"]
        shown = catalog.get(third.id)
        assert (shown.status, shown.duration_s, shown.renditions[0].name, shown.manifests.hls) == (
            "ready", 3.5, "360p", "processed/x/cmaf/master.m3u8")
        assert shown.created_at == third.created_on and shown.thumbnails == Thumbnails(poster="thumbnails/x/poster.jpg")
        assert catalog.get(private.id).visibility == "private"  # the api decides who may see it
        assert titles(catalog.list_for_owner(OWNER))[:3] == ["still processing", "unlisted", "private"]
        assert first.id in {item.id for item in catalog.list_for_owner(OWNER, limit=100).items}

    def test_filters_by_owner_tag_and_words_of_title_description_and_tags(self, videos, catalog, project):
        upload(videos, "Cats in space", tags=("Science Fiction",))
        upload(videos, "Cooking pasta", owner=OTHER, description="With the cats watching.")
        upload(videos, "Dogs", tags=("pets",))
        project(videos)
        assert titles(catalog.list_public(owner=OTHER)) == ["Cooking pasta"]
        assert titles(catalog.list_public(tag="science fiction")) == ["Cats in space"]
        assert titles(catalog.list_public(query="CATS")) == ["Cooking pasta", "Cats in space"]
        assert titles(catalog.list_public(query="pets")) == ["Dogs"]
        assert titles(catalog.list_public(query="cats space")) == ["Cats in space"]
        assert titles(catalog.list_public(query='fiction" OR dogs*')) == []  # no query syntax gets through
        assert titles(catalog.list_public(owner=OWNER, query="cats")) == ["Cats in space"]

    def test_cursor_pages_cover_every_video_exactly_once(self, videos, catalog, project):
        uploaded = [upload(videos, f"video {n}") for n in range(5)]
        project(videos)
        seen, cursor, pages = [], None, 0
        while True:
            page = catalog.list_public(limit=2, cursor=cursor)
            seen += [item.id for item in page.items]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == 3 and seen == [video.id for video in reversed(uploaded)]

    @pytest.mark.parametrize("cursor", [
        "not base64!", base64.urlsafe_b64encode(b"[1, 2]").decode(), base64.urlsafe_b64encode(b"\xff").decode(),
    ])
    def test_a_bad_cursor_is_a_validation_error(self, catalog, cursor):
        with pytest.raises(ValidationError) as refused:
            catalog.list_public(cursor=cursor)
        assert refused.value.field == "cursor"

    def test_edits_and_deletion_are_reflected(self, videos, catalog, project):
        edited, hidden, deleted = upload(videos, "before"), upload(videos, "hidden"), upload(videos, "deleted")
        edited.edit_details(OWNER, ("user",), title="after", tags=["new"])
        hidden.edit_details(OWNER, ("user",), visibility="private")
        deleted.delete(OWNER, ("user",))
        videos.save(edited, hidden, deleted)
        project(videos)
        assert titles(catalog.list_public()) == ["after"]
        assert titles(catalog.list_public(tag="new")) == ["after"] and catalog.get(deleted.id) is None
        assert catalog.get(edited.id).updated_at == edited.modified_on

    def test_public_profiles_follow_the_accounts_log(self, eventstore_env, catalog, project):
        with AccountsLog(env=eventstore_env) as accounts:
            user = User.register(uuid.uuid4(), "alice", "alice@example.com", "hash", first=True)
            user.update_profile(user.id, ("admin",), display_name="Alice", bio="Films", avatar_url=None)
            accounts.save(user)
            project(accounts, AccountsLog)
        profile = catalog.get_profile(user.id)
        assert (profile.username, profile.display_name, profile.bio, profile.avatar_url) == (
            "alice", "Alice", "Films", None)

    def test_replayed_notifications_are_skipped(self, videos, catalog, project):
        video = upload(videos, "old title")
        video.edit_details(OWNER, ("user",), title="new title")
        videos.save(video)
        project(videos)
        projection = CatalogProjection(catalog)
        for notification in videos.recorder.select_notifications(start=1, limit=100):
            projection.process_event(videos.mapper.to_domain_event(notification), Tracking("videos", notification.id))
        assert titles(catalog.list_public()) == ["new title"]

class SqlCatalogScenarios(CatalogScenarios):
    """Projected by eventsourcing's runner, following the log as the projector process does."""

    @pytest.fixture
    def catalog(self, catalog_url: str) -> Iterator[SqlCatalog]:
        catalog = SqlCatalog(catalog_url)
        catalog.create_tables()
        yield catalog
        catalog.close()

    @pytest.fixture
    def project(self, catalog: SqlCatalog, eventstore_env: dict[str, str]):
        def project(source: Application, log: type[Application] = VideosLog) -> None:
            """Run the projector on one log until it has caught up, then stop it."""
            catalog_follower(catalog, source).catch_up()

        return project

    def test_unfinished_videos_are_counted_by_status_with_the_oldest_change(self, videos, catalog, project):
        waiting = upload(videos, "waiting", ready=False)
        upload(videos, "also waiting", ready=False)
        started = upload(videos, "started", ready=False)
        started.start_processing()
        videos.save(started)
        upload(videos, "done")
        project(videos)

        unfinished = catalog.unfinished()
        assert {status: count for status, (count, _) in unfinished.items()} == {"uploaded": 2, "processing": 1}
        assert unfinished["uploaded"][1] == catalog.get(waiting.id).updated_at
        assert unfinished["processing"][1] == catalog.get(started.id).updated_at

    def test_the_sweep_is_shown_videos_waiting_too_long_and_recent_failures(self, videos, catalog, project):
        from datetime import UTC, datetime, timedelta

        waiting = upload(videos, "waiting", ready=False)
        started = upload(videos, "started", ready=False)
        started.start_processing()
        failed = upload(videos, "failed", ready=False)
        failed.start_processing()
        failed.record_failure("away", retryable=True)
        videos.save(started, failed)
        upload(videos, "done")
        project(videos)
        now = datetime.now(UTC)

        unsettled = catalog.unsettled_videos(waiting_before=now + timedelta(seconds=1), failed_since=now - timedelta(days=1))
        assert set(unsettled) == {waiting.id, started.id, failed.id}
        assert catalog.unsettled_videos(waiting_before=now - timedelta(days=1), failed_since=now + timedelta(seconds=1)) == []

    def test_a_crash_before_commit_leaves_nothing_and_the_restart_applies_the_event_once(
        self, videos, catalog, project,
    ):
        video = upload(videos, "once")
        crashes = [SimulatedCrash("killed between the view write and its commit")]

        def crash_once(_connection) -> None:
            if crashes:
                raise crashes.pop()

        event.listen(catalog.engine, "commit", crash_once)
        with pytest.raises(SimulatedCrash):
            project(videos)
        event.remove(catalog.engine, "commit", crash_once)
        assert catalog.get(video.id) is None and catalog.max_tracking_id("videos") is None
        project(videos)
        assert titles(catalog.list_public()) == ["once"]
        assert catalog.max_tracking_id("videos") == videos.recorder.max_notification_id()

    def test_rebuilding_from_zero_gives_the_same_rows(self, videos, eventstore_env, catalog, project):
        kept = upload(videos, "kept", tags=("a",))
        upload(videos, "private", visibility="private")
        gone = upload(videos, "gone")
        gone.delete(OWNER, ("user",))
        videos.save(gone)
        project(videos)
        before = (catalog.list_for_owner(OWNER), catalog.list_public(query="kept"))
        catalog.drop_tables()
        catalog.create_tables()
        assert catalog.get(kept.id) is None and catalog.max_tracking_id("videos") is None
        project(videos)
        assert (catalog.list_for_owner(OWNER), catalog.list_public(query="kept")) == before


class TestCatalogOnSQLite(SqlCatalogScenarios):
    @pytest.fixture
    def eventstore_env(self, tmp_path) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }

    @pytest.fixture
    def catalog_url(self, tmp_path) -> str:
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"


class TestCatalogOnPostgres(SqlCatalogScenarios):
    @pytest.fixture
    def eventstore_env(self, postgres_eventstore_env: Mapping[str, str]) -> dict[str, str]:
        return dict(postgres_eventstore_env)

    @pytest.fixture
    def catalog_url(self, postgres_url: str, postgres_schema: str) -> str:
        return f"{postgres_url}?schema={postgres_schema}"


class TestCatalogInMemory(CatalogScenarios):
    @pytest.fixture
    def eventstore_env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}

    @pytest.fixture
    def catalog(self) -> InMemoryVideoCatalog:
        return InMemoryVideoCatalog()

    @pytest.fixture
    def project(self, catalog: InMemoryVideoCatalog):
        def project(source: Application, _log: type[Application] = VideosLog) -> None:
            """Feed the log straight to the projection: an in-memory log has no other reader."""
            projection = CatalogProjection(catalog)
            start = (catalog.max_tracking_id(source.name) or 0) + 1
            for notification in source.recorder.select_notifications(start=start, limit=1000):
                projection.process_event(source.mapper.to_domain_event(notification),
                                         Tracking(source.name, notification.id))

        return project
