"""Why a rule refuses a command, by kind; each edge maps kinds to what it answers
(``shared.http.problems.REFUSAL_STATUS``)."""

from __future__ import annotations

from enum import StrEnum


class RefusalKind(StrEnum):
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"
    BUSY = "busy"


class Refused(Exception):
    """A command the rules do not allow, of a kind, naming the field it is about if any."""

    kind: RefusalKind = RefusalKind.CONFLICT
    title: str = "Conflict"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class Forbidden(Refused):
    kind, title = RefusalKind.FORBIDDEN, "Not your responsibility"


class NotFound(Refused):
    kind, title = RefusalKind.NOT_FOUND, "Not found"


class Conflict(Refused):
    kind, title = RefusalKind.CONFLICT, "Conflict"


class Invalid(Refused):
    kind, title = RefusalKind.INVALID, "Invalid request"


class Busy(Refused):
    """One more than a bound allows at once; the caller may ask again after a while."""

    kind, title = RefusalKind.BUSY, "Too many at once"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
