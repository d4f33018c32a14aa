"""The events declared as classes (so that a type checker sees them) keep the topics and the
fields their `@event("Name")` decorators gave them: the stored events of existing databases
are found by topic and applied by passing their fields to the decorated methods."""

import dataclasses
import inspect

import pytest
from eventsourcing.domain import CanInitAggregate, decorated_funcs
from eventsourcing.utils import get_topic, resolve_topic

from domain.comments import Comment
from domain.likes import Like
from domain.transcode_jobs import TranscodeJob
from domain.users import User
from domain.videos import Video

DECLARED = {
    "domain.videos:Video.Uploaded": Video.Uploaded,
    "domain.videos:Video.ProcessingStarted": Video.ProcessingStarted,
    "domain.videos:Video.ProcessingAbandoned": Video.ProcessingAbandoned,
    "domain.videos:Video.ProcessingRedriven": Video.ProcessingRedriven,
    "domain.videos:Video.RetriesGivenUp": Video.RetriesGivenUp,
    "domain.videos:Video.ProcessingFailed": Video.ProcessingFailed,
    "domain.videos:Video.RetryRequested": Video.RetryRequested,
    "domain.videos:Video.DetailsEdited": Video.DetailsEdited,
    "domain.videos:Video.Deleted": Video.Deleted,
    "domain.videos:Video.RenditionPublished": Video.RenditionPublished,
    "domain.videos:Video.Processed": Video.Processed,
    "domain.likes:Like.Liked": Like.Liked,
    "domain.likes:Like.Reliked": Like.Reliked,
    "domain.likes:Like.Unliked": Like.Unliked,
    "domain.comments:Comment.Posted": Comment.Posted,
    "domain.comments:Comment.Edited": Comment.Edited,
    "domain.comments:Comment.Deleted": Comment.Deleted,
    "domain.users:User.Registered": User.Registered,
    "domain.users:User.ProfileUpdated": User.ProfileUpdated,
    "domain.transcode_jobs:TranscodeJob.Planned": TranscodeJob.Planned,
    "domain.transcode_jobs:TranscodeJob.TasksRedriven": TranscodeJob.TasksRedriven,
    "domain.transcode_jobs:TranscodeJob.StageCompleted": TranscodeJob.StageCompleted,
}
BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


@pytest.mark.parametrize("topic", sorted(DECLARED))
def test_a_declared_event_keeps_the_topic_of_its_stored_events(topic: str) -> None:
    assert get_topic(DECLARED[topic]) == topic
    assert resolve_topic(topic) is DECLARED[topic]


@pytest.mark.parametrize("topic", sorted(DECLARED))
def test_a_declared_event_has_the_fields_its_method_takes(topic: str) -> None:
    """A field missing from the class would be dropped silently when the event is triggered."""
    event_class = DECLARED[topic]
    aggregate = resolve_topic(topic.rsplit(".", 1)[0])
    method = aggregate.__init__ if issubclass(event_class, CanInitAggregate) else decorated_funcs[event_class]
    params = [name for name in inspect.signature(method).parameters if name not in ("self", "id")]
    fields = [f.name for f in dataclasses.fields(event_class) if f.name not in BASE_FIELDS]
    assert fields == params
