"""Signed-in users, kept on the server: the browser holds only a random session id (an
HttpOnly, SameSite=Strict cookie), never the bearer token the services are called with."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.auth import Actor
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
    """At most ``limit`` sessions, the oldest dropped first; each ends at its token's expiry
    or after ``lifetime``, whichever comes first."""

    def __init__(self, lifetime: timedelta, limit: int, clock: Clock = utc_now) -> None:
        self._lifetime = lifetime
        self._limit = limit
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def begin(self, token: str, actor: Actor) -> Session:
        ends = self._clock() + self._lifetime
        if actor.expires_at is not None:
            ends = min(ends, actor.expires_at)
        session = Session(secrets.token_urlsafe(32), token, actor, secrets.token_urlsafe(32), ends)
        self._sessions[session.id] = session
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session

    def find(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is not None and session.expires_at <= self._clock():
            self.end(session.id)
            return None
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)
