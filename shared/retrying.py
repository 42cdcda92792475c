"""Trying a call again when it failed for a reason that passes (a broker not answering yet, a
log not writable for now): one policy per concern, run by stamina.

Restarting supervised work and scheduling a webhook's next delivery are not retries of one
call but schedules kept across failures and restarts: ``shared.supervision.Backoff``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import stamina

Failures = type[Exception] | tuple[type[Exception], ...]


@dataclass(frozen=True)
class RetryPolicy:
    """Waits from ``first`` seconds, doubling up to ``longest`` (each with up to ``first`` more
    of jitter), for at most ``attempts`` tries and ``within`` seconds (None: no bound)."""

    first: float
    longest: float
    attempts: int | None = None
    within: float | None = None

    def on(self, failures: Failures) -> AsyncIterator[stamina.Attempt]:
        """The attempts, for ``async for attempt in policy.on(...): with attempt: ...``: a
        failure of another kind ends them at once."""
        return stamina.retry_context(
            on=failures,
            attempts=self.attempts,
            timeout=self.within,
            wait_initial=self.first,
            wait_max=self.longest,
            wait_jitter=self.first,
        )


BROKER_PATIENCE = RetryPolicy(first=0.5, longest=5, within=120)
"""A Kafka client started before its broker answers (a broker restarting as a service starts)."""
LOG_RECOVERY = RetryPolicy(first=0.5, longest=10)
"""The tasks service's log writer settling a transaction left open, until the broker answers."""
APPENDING = RetryPolicy(first=0.2, longest=10)
"""A command read from the command topic, waiting for the log to take its answer."""
FORWARDING = RetryPolicy(first=0.2, longest=10, attempts=5)
"""A command forwarded to the partition that decides it; after the last attempt it is refused (503)."""
TRAIL_CATCHING_UP = RetryPolicy(first=0.05, longest=0.5, within=5)
"""A page reading the trail for a change the tasks service already answered with: the audit
service writes it a moment later."""
