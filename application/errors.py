"""Errors the use cases raise; the HTTP adapter maps each to one status. Outbound adapters
translate their libraries' exceptions into these (adapters/outbound/persistence_errors.py)."""

from eventsourcing.persistence import IntegrityError

from domain.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationError

__all__ = [
    "Conflict",
    "DomainError",
    "NotFound",
    "PermissionDenied",
    "ValidationError",
    "AuthenticationFailed",
    "InvalidToken",
    "InvalidPlaybackToken",
    "UnsupportedMedia",
    "PayloadTooLarge",
    "Unavailable",
    "TooManyAttempts",
    "OutcomeNotRecorded",
    "ConcurrentChange",
    "ChecksumMismatch",
    "UnsupportedChecksum",
    "TooManyStreams",
]


class AuthenticationFailed(DomainError):
    """Unknown user, wrong password or disabled account: one answer for all."""


class InvalidToken(AuthenticationFailed):
    """A token that is malformed, forged, expired, not yet valid or revoked."""


class InvalidPlaybackToken(PermissionDenied):
    """A media token that is forged, malformed or expired."""


class UnsupportedMedia(DomainError):
    """The bytes are not an accepted video container with a real video stream."""


class Unavailable(DomainError):
    """A backend the request needs is down or slow; the client may retry shortly."""


class PayloadTooLarge(DomainError):
    """The upload is over the size limit."""


class ConcurrentChange(Conflict, IntegrityError):
    """Two writers saved the same aggregate at once and this one lost; it may simply try again.
    An eventsourcing IntegrityError too, so the use cases that retry on one retry on this."""

    def __init__(self, message: str = "it changed while this request was handled; please retry") -> None:
        super().__init__(message)


class ChecksumMismatch(DomainError):
    """The chunk's bytes do not match the checksum the client sent with them."""


class UnsupportedChecksum(DomainError):
    """A checksum algorithm we do not compute."""


class TooManyStreams(DomainError):
    """Too many open status streams, for this user or this process (429)."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

class TooManyAttempts(DomainError):
    """A budget of attempts (failed logins for one account) is spent; retry later."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OutcomeNotRecorded(Exception):
    """Handling a message failed, and so did recording that it failed (the database is away):
    the message must be neither dead-lettered nor committed, or what it was about stays stuck."""
