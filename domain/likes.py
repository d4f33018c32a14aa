"""Likes: at most one per (user, video), so liking twice or unliking what is not liked changes nothing."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


def like_id(video_id: UUID, user_id: UUID) -> UUID:
    """One id per (video, user): two likes of the same pair collide in the event store."""
    return uuid5(NAMESPACE_URL, f"vodhub:like:{video_id}:{user_id}")


class Like(Aggregate):
    @staticmethod
    def create_id(video_id: UUID, user_id: UUID) -> UUID:
        return like_id(video_id, user_id)

    # Declared (not `@event("Name")`) so that a type checker sees them; the names, hence the
    # stored topics, and the fields are those the decorated methods gave them.
    class Liked(Aggregate.Created):
        video_id: UUID
        user_id: UUID

    @event(Liked)
    def __init__(self, video_id: UUID, user_id: UUID) -> None:
        self.video_id = video_id
        self.user_id = user_id
        self.active = True

    def like(self) -> bool:
        """Like again after an unlike; whether anything changed."""
        if self.active:
            return False
        self._reliked(video_id=self.video_id, user_id=self.user_id)
        return True

    def unlike(self) -> bool:
        """Whether anything changed."""
        if not self.active:
            return False
        self._unliked(video_id=self.video_id, user_id=self.user_id)
        return True

    # Every event names the pair, so a read model needs no memory of earlier ones.
    class Reliked(Aggregate.Event):
        video_id: UUID
        user_id: UUID

    @event(Reliked)
    def _reliked(self, video_id: UUID, user_id: UUID) -> None:
        self.active = True

    class Unliked(Aggregate.Event):
        video_id: UUID
        user_id: UUID

    @event(Unliked)
    def _unliked(self, video_id: UUID, user_id: UUID) -> None:
        self.active = False
