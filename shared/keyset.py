"""The identity provider's JWKS fetched over HTTP without ever holding up the event loop: one
fetch in flight, a copy kept for a while, a cooldown after a failed fetch, and a key id the
fresh copy lacks refused at once (a token with a made-up ``kid`` must not buy a fetch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import jwt
from pydantic import BaseModel, Field

from shared.logging import get_logger

log = get_logger(__name__)


class KeySetPolicy(BaseModel):
    """How often the key set is fetched; ``POLICYTRACK_AUTH_JWKS_*``."""

    kept_seconds: float = Field(default=300, gt=0, description="a copy older than this is fetched again")
    fresh_seconds: float = Field(
        default=30, ge=0, description="within this of a fetch, a key id the copy lacks is refused without fetching"
    )
    cooldown_seconds: float = Field(default=30, ge=0, description="no fetch this long after a failed one")
    timeout_seconds: float = Field(default=5, gt=0, le=60)


class RemoteKeySet:
    def __init__(
        self, url: str, policy: KeySetPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._url = url
        self._policy = policy or KeySetPolicy()
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._fetching: asyncio.Future[None] | None = None

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key of ``kid`` in the copy held now; never fetches."""
        return self._keys.get(kid)

    async def ready_for(self, kid: str) -> None:
        """Fetches the key set when ``kid`` may be in a newer copy and a fetch is allowed; waits
        for a fetch already in flight rather than starting another."""
        if self._fetching is None:
            if not self._worth_fetching(kid):
                return
            self._fetching = asyncio.ensure_future(self._fetch())
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        await asyncio.shield(self._fetching)

    def _worth_fetching(self, kid: str) -> bool:
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._policy.cooldown_seconds:
            return False
        if self._fetched_at is None:
            return True
        age = now - self._fetched_at
        if kid in self._keys:
            return age >= self._policy.kept_seconds
        return age >= self._policy.fresh_seconds

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._policy.timeout_seconds) as client:
                response = await client.get(self._url)
                response.raise_for_status()
            fetched = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
            # The copy held is kept: a key server that is down must not log everyone out.
            self._failed_at = self._clock()
            log.warning("key set fetch failed", url=self._url, error=str(error)[:200])
        else:
            self._keys = {jwk.key_id: jwk for jwk in fetched.keys if jwk.key_id}
            self._fetched_at, self._failed_at = self._clock(), None
        finally:
            self._fetching = None
