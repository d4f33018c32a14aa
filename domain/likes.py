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

    @event("Liked")
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
    @event("Reliked")
    def _reliked(self, video_id: UUID, user_id: UUID) -> None:
        self.active = True

    @event("Unliked")
    def _unliked(self, video_id: UUID, user_id: UUID) -> None:
        self.active = False
