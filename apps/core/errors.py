"""One error family for the whole platform, rendered the same way by the API,
the admin and the portal."""
from __future__ import annotations


class ApplicationError(Exception):
    """A refusal a person or a caller can act on: `message` says what went wrong
    and what to do next, `details` carries field-level specifics."""

    status_code = 400

    def __init__(self, message: str, *, details: dict | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code

    def as_dict(self) -> dict:
        return {"error": self.message, "details": self.details}


class NotFound(ApplicationError):
    status_code = 404


class PermissionDenied(ApplicationError):
    status_code = 403


class ProviderError(ApplicationError):
    """A vendor failed. `retryable` says whether trying again (or another key) may help."""

    status_code = 502

    def __init__(self, message: str, *, retryable: bool, details: dict | None = None):
        super().__init__(message, details=details)
        self.retryable = retryable
