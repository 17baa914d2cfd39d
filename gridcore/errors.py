"""Domain errors.

Every error the product reports to a user is one of these. ``api.errors`` maps each class to an
HTTP status in one table and renders RFC 9457 ``application/problem+json``; the command line
prints ``str(error)`` and exits non-zero. Each error carries a stable ``kind`` (the problem type
slug) and optional structured ``details`` (row, field, reason…) so that a client can point the
user at what is wrong.
"""

from __future__ import annotations

from typing import Any


class GridcoreError(Exception):
    """Base of all domain errors."""

    kind = "gridcore-error"
    title = "gridcore error"

    def __init__(self, message: str, *, msg_key: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details
        # The message in the catalogue (``problem.detail.<msg_key>``, placeholders from
        # ``details``) that a user reads in their language; ``message`` stays the precise
        # English one for logs and the command line.
        self.msg_key = msg_key

    def __str__(self) -> str:
        return self.message


class ValidationError(GridcoreError):
    """Input that cannot be accepted as it is (a bad field, coordinate, geometry or file)."""

    kind = "validation-error"
    title = "Invalid input"


class UnknownParameter(ValidationError):
    """A query parameter the resource does not know (a filter on a property it has not):
    HTTP 400, as OGC API – Features asks, rather than silently ignored or kept."""

    kind = "unknown-parameter"
    title = "Unknown parameter"


class InvalidCode(ValidationError):
    """A grid / area / city-part code that is malformed or does not fit its parent."""

    kind = "invalid-code"
    title = "Invalid code"


class ImportRejected(ValidationError):
    """A file import that was refused; nothing was written. ``problems`` lists every row."""

    kind = "import-rejected"
    title = "Import rejected"

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None,
                 **details: Any) -> None:
        super().__init__(message, problems=problems or [], **details)
        self.problems: list[dict[str, Any]] = problems or []


class InvalidParameter(ValidationError):
    """A query parameter that is malformed, out of range or not known at all, where the
    protocol answers 400 (OGC API – Features, ``/req/core/query-param-invalid`` and
    ``/req/core/query-param-unknown``) rather than the 422 of an invalid body."""

    kind = "invalid-parameter"
    title = "Invalid query parameter"


class NotFound(GridcoreError):
    kind = "not-found"
    title = "Not found"


class Conflict(GridcoreError):
    """The request conflicts with the current state (duplicate, illegal transition…)."""

    kind = "conflict"
    title = "Conflict"


class PayloadTooLarge(GridcoreError):
    kind = "payload-too-large"
    title = "Payload too large"


class OutsideManagedArea(ValidationError):
    """A point that lies outside every unit grid (beyond the snap tolerance)."""

    kind = "outside-managed-area"
    title = "Outside the managed area"


class ServiceUnavailable(GridcoreError):
    """A dependency (the database) is unreachable or unsuitable; the request may be retried."""

    kind = "service-unavailable"
    title = "Service unavailable"


class DatabaseUnsuitable(ServiceUnavailable):
    """PostgreSQL or PostGIS missing or too old."""

    kind = "database-unsuitable"
    title = "Database unsuitable"


class Unauthenticated(GridcoreError):
    """No identity, or one that cannot be trusted (bad password, expired token, revoked key)."""

    kind = "unauthenticated"
    title = "Authentication required"


class Forbidden(GridcoreError):
    """A known identity asking for an action its role or area does not allow (records outside
    the scope are reported as NotFound instead, so their existence is not leaked)."""

    kind = "forbidden"
    title = "Forbidden"


class TooManyRequests(GridcoreError):
    """A client exceeded its rate; ``retry_after_s`` says when to come back."""

    kind = "too-many-requests"
    title = "Too many requests"


class InvalidConfiguration(GridcoreError):
    """A setting (a ``GRIDCORE_*`` variable) gridcore cannot use: which one, and why."""

    kind = "invalid-configuration"
    title = "Invalid configuration"


class InsecureConfiguration(GridcoreError):
    """A secret left at its default (or missing) outside development mode."""

    kind = "insecure-configuration"
    title = "Insecure configuration"
