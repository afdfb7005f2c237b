"""Every error the services and the auth layer raise, in one place.

Services raise these and know nothing of HTTP; :mod:`todo_core.api` maps each one to a JSON
response in FastAPI's shape (``{"detail": ...}``) with the status code declared here.
"""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """A setting is missing or invalid. Names the variable; never echoes a secret's value."""


class AppError(Exception):
    """Base of the errors that become an HTTP response."""

    status_code: int = 500
    default_detail: str = "Internal server error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        super().__init__(self.detail)


class NotAuthenticated(AppError):
    """No usable credentials: missing, malformed, expired or badly signed token."""

    status_code = 401
    default_detail = "Not authenticated"

    def __init__(self, detail: str | None = None, *, error: str = "invalid_token"):
        # RFC 6750 section 3: tell the client which scheme to use and why it failed.
        challenge = "Bearer" if detail is None else f'Bearer error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class RetryLater(AppError):
    """An error the same request may succeed after: answered with ``Retry-After`` (seconds)."""

    default_retry_after_seconds: int = 1

    def __init__(self, detail: str | None = None, *, retry_after_seconds: int | None = None):
        seconds = (
            self.default_retry_after_seconds if retry_after_seconds is None else retry_after_seconds
        )
        super().__init__(detail, headers={"Retry-After": str(seconds)})


class PermissionDenied(AppError):
    """The token is valid but belongs to another user than the path names."""

    status_code = 403
    default_detail = "Not allowed to access another user's data"


class NotFound(AppError):
    """The resource does not exist, or belongs to someone else (the two are indistinguishable)."""

    status_code = 404
    default_detail = "Not found"


class IdempotencyKeyReused(AppError):
    """The Idempotency-Key was already used, by this user, for a different request."""

    status_code = 422
    default_detail = "Idempotency-Key was already used with a different request"


class IdempotencyKeyInProgress(AppError):
    """The first request with this Idempotency-Key is still running; retry a little later."""

    status_code = 409
    default_detail = "A request with this Idempotency-Key is still in progress"


class PayloadTooLarge(AppError):
    status_code = 413
    default_detail = "Request body too large"


class ServiceUnavailable(RetryLater):
    """A dependency (the database, the JWKS endpoint) cannot be reached right now; retry later."""

    status_code = 503
    default_detail = "Service temporarily unavailable"


class AssistantFailed(AppError):
    """The assistant could not produce a reply. The user's message is stored; retrying is safe."""

    status_code = 502
    default_detail = "The assistant failed to reply; your message was saved, please try again"


class AssistantTimedOut(RetryLater):
    """The model did not answer within the turn's budget. The message is stored; retry."""

    status_code = 504
    default_detail = "The assistant took too long to reply; your message was saved, please retry"


class AssistantUnavailable(RetryLater):
    """The model's provider is rate limiting, failing or unreachable right now. The message is
    stored; retry after ``Retry-After`` seconds."""

    status_code = 503
    default_detail = "The assistant is unavailable right now; your message was saved, please retry"
    default_retry_after_seconds = 5


class ChatRateLimited(RetryLater):
    """The user sent more chat turns than the window allows (the cost guard)."""

    status_code = 429
    default_detail = "Too many chat messages; please wait before sending another"
