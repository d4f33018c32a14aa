"""Media names stay inside a video's folders."""

import uuid

import pytest

from application.media_layout import is_safe_media_name, object_key, relative_name

VIDEO = uuid.uuid4()


@pytest.mark.parametrize("name", ["cmaf/master.m3u8", "cmaf/chunk-1-00001.m4s", "mp4/720p.mp4", "thumbnails/poster.jpg"])
def test_files_in_the_video_folders_are_allowed(name):
    assert is_safe_media_name(name)
    assert relative_name(VIDEO, object_key(VIDEO, name)) == name


@pytest.mark.parametrize("name", [
    "", "cmaf", "cmaf/", "raw/original.mp4", "cmaf/../../raw/original.mp4", "cmaf/./x", "mp4//720p.mp4",
    "/etc/passwd", "cmaf\\..\\x", "cmaf/%2e%2e/x", "cmaf/x\x00.m3u8", "thumbnails/" + "a" * 600,
])
def test_anything_else_is_refused(name):
    assert not is_safe_media_name(name)


def test_thumbnails_and_processed_files_live_in_their_own_prefixes():
    assert object_key(VIDEO, "thumbnails/poster.jpg") == f"thumbnails/{VIDEO}/poster.jpg"
    assert object_key(VIDEO, "cmaf/master.m3u8") == f"processed/{VIDEO}/cmaf/master.m3u8"


def test_media_names_inside_a_plan_are_safe_and_a_bare_or_odd_plan_is_not():
    import uuid

    from application.media_layout import is_safe_media_name, plan_of

    plan = uuid.uuid4()
    assert is_safe_media_name(f"{plan}/cmaf/240p/00001.m4s") and is_safe_media_name(f"{plan}/thumbnails/poster.jpg")
    assert plan_of(f"{plan}/cmaf/master.m3u8") == plan
    for name in (f"{plan}", f"{plan}/", f"{plan}/raw/original.mp4", f"{plan}/../x/cmaf/a", f"{str(plan).upper()}/cmaf/a"):
        assert not is_safe_media_name(name), name
