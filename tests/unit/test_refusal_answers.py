"""Every edge answers the rules' refusals from one table: a bound's refusal is 429 with when to
ask again, as problem+json."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.bounds import Bound, Held
from shared.http.problems import install_problem_handlers


async def test_one_more_than_a_bound_allows_is_429_with_retry_after() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    streams = Held("streams", Bound(per_user=1, in_all=4, retry_after_seconds=7))

    @app.get("/held")
    async def held() -> dict[str, str]:
        with streams.holding("u-ndrc"), streams.holding("u-ndrc"):
            return {"held": "twice"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
        answer = await client.get("/held")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "at most 1 streams per user at once"
    assert streams.in_all == 0, "what was held is released with the refusal"
