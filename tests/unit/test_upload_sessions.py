"""The UploadSession aggregate's rules: bytes in order, from the owner, within the length,
only while the session is open and not expired."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import Conflict, NotFound, ValidationError
from domain.upload_sessions import LengthExceeded, OffsetMismatch, UploadExpired, UploadSession

OWNER, OTHER = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def new_session(length: int = 100) -> UploadSession:
    return UploadSession.create(uuid.uuid4(), OWNER, length, {"filename": "a.mp4"}, NOW + timedelta(hours=24))


def test_a_new_session_starts_at_offset_zero():
    session = new_session()
    assert (session.offset, session.remaining, session.parts, session.completed) == (0, 100, [], False)


def test_an_empty_upload_is_refused():
    with pytest.raises(ValidationError):
        new_session(length=0)


def test_chunks_advance_the_offset_and_remember_their_parts():
    session = new_session()
    session.receive_chunk(40, "uploads/x/0")
    session.receive_chunk(60, "uploads/x/40")
    assert (session.offset, session.parts, session.all_received) == (100, ["uploads/x/0", "uploads/x/40"], True)


def test_bytes_must_come_at_the_current_offset():
    session = new_session()
    session.receive_chunk(10, "p")
    session.check_append(OWNER, 10, NOW)
    with pytest.raises(OffsetMismatch):
        session.check_append(OWNER, 0, NOW)


def test_bytes_beyond_the_length_are_refused():
    session = new_session()
    with pytest.raises(LengthExceeded):
        session.receive_chunk(101, "p")
    assert session.offset == 0


def test_only_the_owner_sees_the_session():
    session = new_session()
    with pytest.raises(NotFound):
        session.check_access(OTHER, NOW)
    with pytest.raises(NotFound):
        session.terminate(OTHER, NOW)


def test_an_unfinished_session_expires():
    session = new_session()
    with pytest.raises(UploadExpired):
        session.check_append(OWNER, 0, NOW + timedelta(hours=24))


def test_a_completed_session_does_not_expire_but_takes_no_more_bytes():
    session = new_session()
    session.receive_chunk(100, "p")
    video_id = uuid.uuid4()
    session.complete(video_id)
    session.check_access(OWNER, NOW + timedelta(days=30))
    assert session.video_id == video_id
    with pytest.raises(Conflict):
        session.check_append(OWNER, 100, NOW)
    with pytest.raises(Conflict):
        session.terminate(OWNER, NOW)


def test_completion_needs_every_byte():
    session = new_session()
    session.receive_chunk(99, "p")
    with pytest.raises(Conflict):
        session.complete(uuid.uuid4())


def test_a_terminated_session_is_gone():
    session = new_session()
    session.terminate(OWNER, NOW)
    with pytest.raises(NotFound):
        session.check_access(OWNER, NOW)
    with pytest.raises(Conflict):
        session.receive_chunk(1, "p")


def test_an_abandoned_session_is_gone_too():
    session = new_session()
    session.receive_chunk(100, "p")
    session.abandon()
    with pytest.raises(NotFound):
        session.check_access(OWNER, NOW)


def test_the_state_is_rebuilt_from_its_events():
    session = new_session()
    session.receive_chunk(100, "p")
    session.complete(uuid.uuid4())
    copy = None
    for domain_event in session.collect_events():
        copy = domain_event.mutate(copy)
    assert (copy.offset, copy.parts, copy.video_id, copy.metadata) == (100, ["p"], session.video_id, session.metadata)
