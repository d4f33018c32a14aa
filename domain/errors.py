"""Errors the domain raises when a rule says no."""


class DomainError(Exception):
    """A business rule refused the command."""


class ValidationError(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PermissionDenied(DomainError):
    """The actor may not do this."""


class NotFound(DomainError):
    """No such thing, or the actor may not see it."""


class Conflict(DomainError):
    """The command clashes with the current state."""


class UploadExpired(NotFound):
    """The session outlived its expiry before it was complete."""


class OffsetMismatch(Conflict):
    """The bytes were sent for another offset than where the upload stands."""


class LengthExceeded(DomainError):
    """More bytes than the announced length."""
