"""Signed-in users, kept on the server: the browser holds only a random session id (an
HttpOnly, SameSite=Strict cookie), never the bearer token the services are called with."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.auth import Actor
from shared.bounds import Bound, over
from shared.clock import Clock, utc_now


@dataclass(frozen=True)
class Session:
    id: str
    token: str
    actor: Actor
    csrf: str
    """Posted back by every form of the session; a page of another site cannot know it."""
    expires_at: datetime


class Sessions:
    """Each user's sessions up to ``bound.per_user``, that user's oldest ending first when they
    sign in once more; everyone's together up to ``bound.in_all``, past which signing in is
    refused (429) until one ends or expires. Nobody's sign-in ever ends another user's session.
    Each session ends at its token's expiry or after ``lifetime``, whichever comes first."""

    def __init__(self, lifetime: timedelta, bound: Bound, clock: Clock = utc_now) -> None:
        self._lifetime = lifetime
        self._bound = bound
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._by_user: dict[str, OrderedDict[str, None]] = {}

    def begin(self, token: str, actor: Actor) -> Session:
        mine = list(self._by_user.get(actor.user, ()))
        for oldest in mine[: max(0, len(mine) + 1 - self._bound.per_user)]:
            self.end(oldest)
        if len(self._sessions) >= self._bound.in_all:
            self._end_expired()
            if (refused := over(self._bound, "sessions", 0, len(self._sessions))) is not None:
                raise refused
        ends = self._clock() + self._lifetime
        if actor.expires_at is not None:
            ends = min(ends, actor.expires_at)
        session = Session(secrets.token_urlsafe(32), token, actor, secrets.token_urlsafe(32), ends)
        self._sessions[session.id] = session
        self._by_user.setdefault(actor.user, OrderedDict())[session.id] = None
        return session

    def find(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is not None and session.expires_at <= self._clock():
            self.end(session.id)
            return None
        return session

    def end(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        mine = self._by_user[session.actor.user]
        del mine[session_id]
        if not mine:
            del self._by_user[session.actor.user]

    def _end_expired(self) -> None:
        now = self._clock()
        for session in [s for s in self._sessions.values() if s.expires_at <= now]:
            self.end(session.id)

    def __len__(self) -> int:
        return len(self._sessions)
