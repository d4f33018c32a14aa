"""The Video aggregate's rules: details, permissions, status transitions."""

import uuid

import pytest

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from domain.media import Manifests, Rendition, Thumbnails
from domain.videos import FAILED, PROCESSING, READY, UPLOADED, Video, split_tags

OWNER = uuid.uuid4()
OUTCOME = {
    "duration_s": 1.0, "width": 426, "height": 240,
    "renditions": [Rendition(name="240p", width=426, height=240, bitrate=400_000)],
    "manifests": Manifests(hls="processed/x/cmaf/master.m3u8", dash="processed/x/cmaf/manifest.mpd"),
    "thumbnails": Thumbnails(poster="thumbnails/x/poster.jpg"),
}


def new_video(**details) -> Video:
    values = {"title": "Holiday", "description": "", "tags": [], "visibility": "public", **details}
    return Video.upload(
        uuid.uuid4(), OWNER, ("user",), **values, source_key="raw/x/original.mp4", source_size=10,
        source_content_type="video/mp4", source_sha256="0" * 64,
    )


@pytest.mark.parametrize("details, field", [
    ({"title": "x" * 10_000}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "bell\x07"}, "title"),
    ({"description": "d" * 5001}, "description"),
    ({"tags": ["ok", "bad\x00tag"]}, "tags"),
    ({"tags": ["t" * 33]}, "tags"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"visibility": "secret"}, "visibility"),
])
def test_invalid_details_are_refused(details, field):
    with pytest.raises(ValidationError) as info:
        new_video(**details)
    assert info.value.field == field


def test_tags_are_trimmed_folded_and_deduplicated():
    assert split_tags(" Cats, dogs ,CATS,, ") == ["cats", "dogs"]


def test_a_new_video_is_uploaded():
    assert new_video().status == UPLOADED


def test_processing_succeeds_once():
    video = new_video()
    assert video.start_processing() == 1
    video.record_processed(**OUTCOME)
    assert video.status == READY and video.renditions[0].name == "240p"
    with pytest.raises(Conflict):
        video.start_processing()
    with pytest.raises(Conflict):
        video.record_processed(**OUTCOME)


def test_a_video_left_processing_by_a_dead_worker_is_taken_over_with_a_new_attempt():
    video = new_video()
    video.start_processing()
    assert video.needs_processing and video.status == PROCESSING
    assert video.start_processing() == 2


def test_failure_is_recorded_with_reason_and_attempt():
    video = new_video()
    video.start_processing()
    video.record_failure("not a video", retryable=False)
    assert (video.status, video.failure_reason, video.retryable) == (FAILED, "not a video", False)
    assert not video.needs_processing


def test_private_videos_are_visible_to_owner_and_staff_only():
    video = new_video(visibility="private")
    assert video.may_view(OWNER, ("user",))
    assert video.may_view(uuid.uuid4(), ("moderator",))
    with pytest.raises(NotFound):
        video.check_visible_to(uuid.uuid4(), ("user",))


def test_unlisted_videos_are_readable_by_anyone_with_the_id():
    assert new_video(visibility="unlisted").may_view(uuid.uuid4(), ("user",))


def test_only_owner_and_staff_edit_or_delete():
    video = new_video()
    with pytest.raises(PermissionDenied):
        video.edit_details(uuid.uuid4(), ("user",), title="Mine now")
    video.edit_details(uuid.uuid4(), ("moderator",), title="Moderated")
    video.edit_details(OWNER, ("user",), tags=["A"])
    assert (video.title, video.tags) == ("Moderated", ["a"])
    video.delete(OWNER, ("user",))
    with pytest.raises(NotFound):
        video.check_visible_to(OWNER, ("user",))
    assert not video.needs_processing


def test_only_a_failed_video_is_retried_and_then_waits_to_be_planned_again():
    video = new_video()
    with pytest.raises(Conflict):
        video.retry(OWNER, ("user",))
    video.start_processing()
    video.record_failure("broken", retryable=True)
    with pytest.raises(PermissionDenied):
        video.retry(uuid.uuid4(), ("user",))
    video.retry(uuid.uuid4(), ("moderator",))
    assert (video.status, video.failure_reason, video.needs_processing) == (UPLOADED, None, True)
    assert video.start_processing() == 2


def test_a_published_rendition_makes_a_processing_video_playable_and_never_shrinks():
    video = new_video()
    video.start_processing()
    plan = uuid.uuid4()
    video.plan_processing(plan, duration_s=1.0, width=1280, height=720)
    assert not video.playable
    low = Rendition(name="240p", width=426, height=240, bitrate=400_000)
    high = Rendition(name="720p", width=1280, height=720, bitrate=2_500_000)
    manifests = Manifests(hls="h", dash="d")
    video.publish_renditions(plan, [low], manifests, Thumbnails(poster="p"))
    assert video.playable and video.status == PROCESSING
    video.publish_renditions(plan, [low, high], manifests, Thumbnails())
    video.publish_renditions(plan, [low], manifests, Thumbnails())  # a late writer
    assert [r.name for r in video.renditions] == ["240p", "720p"] and video.thumbnails == Thumbnails(poster="p")
    with pytest.raises(Conflict):
        video.publish_renditions(uuid.uuid4(), [low], Manifests(), Thumbnails())  # another plan's
