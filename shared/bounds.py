"""Bounds on what one user, and everyone together, may hold at once (streams, verifications,
sessions, subscriptions), so that one busy user cannot push the others out. Over a bound, the
refusal is ``Busy`` (429 with ``Retry-After`` on HTTP); what the others hold is never taken away."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field

from shared.domain.refusals import Busy


class Bound(BaseModel):
    """How many of a thing one user may hold at once, and everyone together."""

    per_user: int = Field(ge=1)
    in_all: int = Field(ge=1)
    retry_after_seconds: int = Field(default=5, ge=1)


def over(bound: Bound, what: str, mine: int, everyone: int) -> Busy | None:
    """The refusal of one more of ``what`` when a user holds ``mine`` and everyone ``everyone``."""
    if mine + 1 > bound.per_user:
        detail = f"at most {bound.per_user} {what} per user at once"
    elif everyone + 1 > bound.in_all:
        detail = f"at most {bound.in_all} {what} at once for everyone together"
    else:
        return None
    return Busy(detail, bound.retry_after_seconds)


class Held:
    """What each user holds now (streams open, verifications running) under one ``Bound``."""

    def __init__(self, what: str, bound: Bound) -> None:
        self.what, self.bound = what, bound
        self._by_user: Counter[str] = Counter()

    @property
    def in_all(self) -> int:
        return self._by_user.total()

    def of(self, user: str) -> int:
        return self._by_user[user]

    def refusal(self, user: str) -> Busy | None:
        """Why ``user`` may not take one more now, if they may not."""
        return over(self.bound, self.what, self._by_user[user], self.in_all)

    def take(self, user: str) -> Slot:
        """One held for ``user`` until the slot is released; refused at once when over the bound."""
        if (refused := self.refusal(user)) is not None:
            raise refused
        self._by_user[user] += 1
        return Slot(self, user)

    def _release(self, user: str) -> None:
        self._by_user[user] -= 1
        if not self._by_user[user]:
            del self._by_user[user]

    @contextmanager
    def holding(self, user: str) -> Iterator[None]:
        """Holds one for ``user`` while inside; refused at once when over the bound."""
        slot = self.take(user)
        try:
            yield
        finally:
            slot.release()


class Slot:
    """One thing held; releasing it twice releases it once (a stream ends by its own end, or
    by the response that never started it)."""

    def __init__(self, held: Held, user: str) -> None:
        self._held: Held | None = held
        self._user = user

    def release(self) -> None:
        if self._held is not None:
            self._held._release(self._user)
            self._held = None
