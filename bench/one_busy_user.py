"""One busy user against everyone else (issue 28, item 3): while one user signs in to the
dashboard 1,000 times and opens 50 live alert streams, does another user's dashboard still
answer, their session last, and their alert stream bring their alerts?

The services (tasks, notifications, web) run as processes against a throw-away broker of their
own. The other user's dashboard is timed alone first and then under the busy user's load, in
the same run; the busy user's refusals (429 with Retry-After) are counted.

    .venv/bin/python -m bench.one_busy_user [--sign-ins 1000] [--streams 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from bench.common import scratch_broker, services_running
from shared.auth import mint_dev_token

BROKER_PORT = 19492
PORTS = {"tasks": 18971, "notifications": 18972, "audit": 18973, "web": 18970}
BUSY = {"Authorization": f"Bearer {mint_dev_token('u-busy', 'JILIN', ['implementer'])}"}
OTHER = {"Authorization": f"Bearer {mint_dev_token('u-other', 'JILIN', ['implementer'])}"}
SC = {"Authorization": f"Bearer {mint_dev_token('u-sc', 'SC', ['approver'])}"}


def url(service: str) -> str:
    return f"http://127.0.0.1:{PORTS[service]}"


@contextmanager
def running_system(folder: str) -> Iterator[None]:
    backends = {f"POLICYTRACK_WEB_{name.upper()}_URL": url(name) for name in ("tasks", "notifications", "audit")}
    with scratch_broker(BROKER_PORT, folder) as broker, services_running(broker, PORTS, folder, **backends):
        yield


async def signed_in(user: str) -> httpx.AsyncClient:
    """A browser signed in to the dashboard as ``user`` (JILIN, implementer)."""
    browser = httpx.AsyncClient(base_url=url("web"), timeout=30)
    await sign_in(browser, user)
    return browser


async def sign_in(browser: httpx.AsyncClient, user: str) -> int:
    form = await browser.get("/signin")
    csrf = browser.cookies.get("policytrack_signin") or ""
    assert form.status_code == 200 and csrf, form.text[:200]
    answer = await browser.post(
        "/signin", data={"csrf": csrf, "user": user, "department": "JILIN", "role": "implementer", "back_to": "/"}
    )
    return answer.status_code


async def signing_in(browser: httpx.AsyncClient, times: int) -> list[int]:
    """The busy user signs in ``times`` times, one after another, as a script would."""
    return [await sign_in(browser, "u-busy") for _ in range(times)]


async def page_times(browser: httpx.AsyncClient, count: int) -> list[float]:
    """Seconds each of ``count`` loads of the overview took; every one must be the page."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        page = await browser.get("/")
        times.append(time.perf_counter() - started)
        assert page.status_code == 200 and "/signin" not in str(page.url), (page.status_code, page.url)
    return times


async def alert_arrives(tasks: httpx.AsyncClient, task_id: str) -> float:
    """Seconds from a milestone's due moment to its alert on the other user's own stream."""
    async with (
        httpx.AsyncClient(base_url=url("notifications"), timeout=60) as client,
        client.stream("GET", "/v1/alerts/stream", headers=OTHER) as stream,
    ):
        assert stream.status_code == 200, "the other user's stream opens"
        due = datetime.now(UTC) + timedelta(seconds=3)
        milestone = (
            await tasks.post(
                f"/v1/tasks/{task_id}/milestones", headers=OTHER, json={"title": "Gate", "due": due.isoformat()}
            )
        ).json()["id"]
        async for line in stream.aiter_lines():
            alert = orjson.loads(line[6:]) if line.startswith("data: ") else {}
            if alert.get("data", {}).get("milestone_id") == milestone and alert["type"].endswith("deadline_due.v1"):
                return (datetime.now(UTC) - due).total_seconds()
    raise AssertionError("the stream ended before the alert came")


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


async def measure(sign_ins: int, streams: int) -> None:
    async with httpx.AsyncClient(base_url=url("tasks"), timeout=30) as tasks:
        plan = (await tasks.post("/v1/plans", headers=SC, json={"title": "Overall Plan"})).json()["id"]
        body = {
            "plan_id": plan,
            "title": "Trade",
            "field": "trade",
            "lead_department": "JILIN",
            "due": "2030-01-01T00:00:00Z",
        }
        task_id = (await tasks.post("/v1/tasks", headers=OTHER, json=body)).json()["id"]
        other = await signed_in("u-other")
        alone = await page_times(other, 50)
        alert_alone = await alert_arrives(tasks, task_id)

        async with AsyncExitStack() as held, httpx.AsyncClient(base_url=url("notifications"), timeout=30) as busy:
            opened = refused = 0
            retry_after = set()
            for _ in range(streams):
                stream = await held.enter_async_context(busy.stream("GET", "/v1/alerts/stream", headers=BUSY))
                if stream.status_code == 200:
                    opened += 1
                else:
                    refused += 1
                    retry_after.add(stream.headers.get("retry-after"))
            browser = httpx.AsyncClient(base_url=url("web"), timeout=30)
            held.push_async_callback(browser.aclose)
            started = time.perf_counter()
            signed, under_load = await asyncio.gather(signing_in(browser, sign_ins), page_times(other, 50))
            signing_seconds = time.perf_counter() - started
            alert_under_load = await alert_arrives(tasks, task_id)
            still_in = (await other.get("/")).status_code == 200 and "/signin" not in str((await other.get("/")).url)
        await other.aclose()

    print(
        f"busy user: {streams} alert streams asked, {opened} opened, {refused} refused (429, Retry-After {retry_after})"
    )
    print(f"busy user: {sign_ins} dashboard sign-ins in {signing_seconds:.1f} s, answers {sorted(set(signed))}")
    print(f"other user's overview, alone:          {summary(alone)}")
    print(f"other user's overview, under the load: {summary(under_load)}")
    print(f"  ratio of medians (under load / alone): {statistics.median(under_load) / statistics.median(alone):.2f}")
    print(f"other user's alert on their stream: alone {alert_alone * 1000:.0f} ms, ", end="")
    print(f"under the load {alert_under_load * 1000:.0f} ms")
    print(f"other user still signed in after the busy user's sign-ins: {still_in}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sign-ins", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="policytrack-busy-") as folder, running_system(folder):
        asyncio.run(measure(args.sign_ins, args.streams))


if __name__ == "__main__":
    main()
