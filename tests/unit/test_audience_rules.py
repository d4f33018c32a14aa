"""The audience's rules in the domain: genres, merge-patch nulls, likes, comments."""

import uuid

import pytest

from domain.comments import BODY_MAX, Comment
from domain.errors import Conflict, PermissionDenied, ValidationError
from domain.genres import GENRES, check_genre
from domain.likes import Like, like_id
from domain.videos import Video

OWNER, VIEWER, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def new_video(**details) -> Video:
    values = {"title": "Holiday", "description": "sea", "tags": ["sea"], "visibility": "public", **details}
    return Video.upload(uuid.uuid4(), OWNER, ("user",), **values, source_key="raw/x/original.mp4", source_size=10,
                        source_content_type="video/mp4", source_sha256="0" * 64)


# --- genres and merge patch ----------------------------------------------------------------


def test_genres_are_a_fixed_list_and_case_folded():
    assert "music" in GENRES and check_genre(" Music ") == "music"


def test_an_unknown_genre_names_the_allowed_ones():
    with pytest.raises(ValidationError) as refused:
        new_video(genre="opera")
    assert refused.value.field == "genre" and "film" in refused.value.message and "howto" in refused.value.message


def test_genre_is_set_at_upload_and_by_an_edit():
    video = new_video(genre="travel")
    assert video.genre == "travel"
    video.edit_details(OWNER, ("user",), genre="film")
    assert video.genre == "film"


def test_null_clears_description_tags_and_genre():
    video = new_video(genre="travel")
    video.edit_details(OWNER, ("user",), cleared=("description", "tags", "genre"))
    assert (video.description, video.tags, video.genre, video.title) == ("", [], None, "Holiday")


@pytest.mark.parametrize("field", ["title", "visibility"])
def test_null_is_refused_for_required_fields(field):
    video = new_video()
    with pytest.raises(ValidationError) as refused:
        video.edit_details(OWNER, ("user",), cleared=(field,))
    assert refused.value.field == field
    assert not video.collect_events()[1:]  # nothing but the upload was recorded


def test_a_video_recorded_before_genres_has_none():
    video = new_video()
    uploaded = video.collect_events()[0]
    del uploaded.__dict__["genre"]  # as an event stored before the field existed
    assert uploaded.mutate(None).genre is None


# --- likes ----------------------------------------------------------------------------------


def test_a_like_is_one_per_user_and_video():
    video_id = uuid.uuid4()
    assert like_id(video_id, VIEWER) == like_id(video_id, VIEWER) != like_id(video_id, OTHER)
    assert Like(video_id=video_id, user_id=VIEWER).id == like_id(video_id, VIEWER)


def test_liking_and_unliking_twice_change_nothing_the_second_time():
    like = Like(video_id=uuid.uuid4(), user_id=VIEWER)
    assert like.like() is False
    assert like.unlike() is True and like.unlike() is False
    assert like.like() is True and like.active
    names = [type(event).__name__ for event in like.collect_events()]
    assert names == ["Liked", "Unliked", "Reliked"]


# --- comments -------------------------------------------------------------------------------


def post(body: str = "Nice!", parent: Comment | None = None, video_id: uuid.UUID | None = None) -> Comment:
    return Comment.post(uuid.uuid4(), video_id or VIDEO, VIEWER, body, parent)


VIDEO = uuid.uuid4()


@pytest.mark.parametrize("body", ["", "   \n ", "x" * (BODY_MAX + 1), "bell\x07", "nul\x00", "esc\x1b[31m", "a\x85b"])
def test_bad_bodies_are_refused(body):
    with pytest.raises(ValidationError) as refused:
        post(body)
    assert refused.value.field == "body"


def test_bodies_keep_newlines_tabs_and_markup_as_plain_text():
    body = "line one\r\n\tline two <b>not bold</b>"
    assert post(body).body == "line one\n\tline two <b>not bold</b>"
    assert len(post("x" * BODY_MAX).body) == BODY_MAX


def test_replies_are_one_level_deep_and_on_the_same_video():
    top = post()
    reply = post("me too", parent=top)
    assert reply.parent_id == top.id
    with pytest.raises(ValidationError):
        post("deeper", parent=reply)
    with pytest.raises(ValidationError):
        post("elsewhere", parent=top, video_id=uuid.uuid4())


def test_only_the_author_edits():
    comment = post()
    with pytest.raises(PermissionDenied):
        comment.edit(OWNER, "changed")
    comment.edit(VIEWER, "changed")
    assert comment.body == "changed" and comment.edited


@pytest.mark.parametrize("actor, roles, allowed", [
    (VIEWER, ("user",), True), (OWNER, ("user",), True), (OTHER, ("moderator",), True),
    (OTHER, ("admin",), True), (OTHER, ("user",), False),
])
def test_who_may_delete(actor, roles, allowed):
    comment = post()
    if not allowed:
        with pytest.raises(PermissionDenied):
            comment.delete(actor, roles, video_owner_id=OWNER)
        return
    comment.delete(actor, roles, video_owner_id=OWNER)
    assert comment.deleted and comment.body == ""
    with pytest.raises(Conflict):
        comment.edit(VIEWER, "back from the dead")
