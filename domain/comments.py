"""Comments on videos: plain text, one level of replies, and who may edit or delete them."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, PermissionDenied, ValidationError
from domain.users import ADMIN, MODERATOR

BODY_MAX = 5000
STAFF = (MODERATOR, ADMIN)


def clean_body(body: str) -> str:
    """Plain text of 1 to BODY_MAX characters; newlines and tabs are the only control characters
    allowed (CRLF becomes LF). It is stored and returned as text: clients must render it as text."""
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise ValidationError("body", "must not be blank")
    if len(body) > BODY_MAX:
        raise ValidationError("body", f"at most {BODY_MAX} characters")
    if any((ord(ch) < 32 and ch not in "\n\t") or 127 <= ord(ch) < 160 for ch in body):
        raise ValidationError("body", "control characters other than newlines and tabs are not allowed")
    return body


class Comment(Aggregate):
    # Declared (not `@event("Name")`) so that a type checker sees them; the names, hence the
    # stored topics, and the fields are those the decorated methods gave them.
    class Posted(Aggregate.Created):
        video_id: UUID
        author_id: UUID
        body: str
        parent_id: UUID | None

    @event(Posted)
    def __init__(self, id: UUID, video_id: UUID, author_id: UUID, body: str, parent_id: UUID | None) -> None:
        self.video_id = video_id
        self.author_id = author_id
        self.body = body
        self.parent_id = parent_id
        self.deleted = False
        self.edited = False

    @classmethod
    def post(cls, comment_id: UUID, video_id: UUID, author_id: UUID, body: str, parent: Comment | None = None) -> Comment:
        """A comment, or a reply to a top-level comment of the same video (one level of replies)."""
        body = clean_body(body)
        if parent is not None:
            if parent.video_id != video_id or parent.deleted:
                raise ValidationError("parent_id", "not a comment of this video")
            if parent.parent_id is not None:
                raise ValidationError("parent_id", "replies cannot be replied to; answer the comment they reply to")
        return cls(id=comment_id, video_id=video_id, author_id=author_id, body=body,
                   parent_id=parent.id if parent else None)

    def may_delete(self, actor_id: UUID, actor_roles: tuple[str, ...], video_owner_id: UUID) -> bool:
        return actor_id in (self.author_id, video_owner_id) or any(role in STAFF for role in actor_roles)

    def edit(self, actor_id: UUID, body: str) -> None:
        if actor_id != self.author_id:
            raise PermissionDenied("only its author may edit a comment")
        if self.deleted:
            raise Conflict("the comment was deleted")
        body = clean_body(body)
        if body != self.body:
            self._edited(body=body)

    class Edited(Aggregate.Event):
        body: str

    @event(Edited)
    def _edited(self, body: str) -> None:
        self.body = body
        self.edited = True

    def delete(self, actor_id: UUID, actor_roles: tuple[str, ...], video_owner_id: UUID) -> None:
        """The author, the video's owner, a moderator or an admin; deleting twice changes nothing."""
        if not self.may_delete(actor_id, actor_roles, video_owner_id):
            raise PermissionDenied("only the author, the video's owner, a moderator or an admin may delete it")
        if not self.deleted:
            self._deleted()

    class Deleted(Aggregate.Event):
        pass

    @event(Deleted)
    def _deleted(self) -> None:
        self.deleted = True
        self.body = ""
