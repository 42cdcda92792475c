"""What the write path's own conditions are answered with, over HTTP and in a ``command.rejected``
alike; the rules' refusals are answered by ``shared.http.problems.REFUSAL_STATUS``."""

from __future__ import annotations

STALE_VERSION = 412
KEY_REUSED = 422
KEY_IN_FLIGHT = 409
UNAUTHENTICATED = 401
