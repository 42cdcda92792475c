"""End to end: from an accepted command to its entry in the audit trail, and to the alert it
raises on the live SSE stream, at a steady 200 commands/s.

The three services run as processes against a throw-away broker of their own (deploy/kafka.sh
on port 19392). Each command schedules a milestone due within the hour, so the notifications
service raises ``deadline_approaching`` for it at once. The same load runs for a while first,
unmeasured, so that the figure is the steady state and not the broker's start. The audit
trail is followed as a live reader would: each page of ``/v1/audit/events`` after the last
waits for the next entry (``wait``), so the figure includes one query and its answer, not a
polling interval.

With ``--listeners N`` that many officials (each a user of its own) follow the alert stream as
well: what one more open dashboard costs the system.

    .venv/bin/python -m bench.latency [--rate 200] [--seconds 10] [--warm-up 30] [--listeners 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import psutil

from bench.common import BrokerRequests, CpuMeter, listening_on, scratch_broker, services_running
from bench.results import Results, Row, scaled
from shared.auth import mint_dev_token
from shared.cursor import encode_cursor
from shared.process import tune_interpreter

BROKER_PORT = 19392
PORTS = {"tasks": 18961, "notifications": 18962, "audit": 18963}
SC = {"Authorization": f"Bearer {mint_dev_token('u-sc', 'SC', ['approver'])}"}
JILIN = {"Authorization": f"Bearer {mint_dev_token('u-jilin', 'JILIN', ['implementer'])}"}
NDRC = {"Authorization": f"Bearer {mint_dev_token('u-ndrc', 'NDRC', ['supervisor'])}"}


def url(service: str) -> str:
    return f"http://127.0.0.1:{PORTS[service]}"


@contextmanager
def running_system(folder: str) -> Iterator[dict[str, psutil.Process]]:
    """The broker and the three services, by name, running until the block ends."""
    with scratch_broker(BROKER_PORT, folder) as broker, services_running(broker, PORTS, folder) as services:
        yield {"broker": listening_on(BROKER_PORT), **services, "load generator": psutil.Process()}


class Arrivals:
    """When each milestone's command was answered, and when its entry and its alert arrived (the
    alert: when the last of the ``listeners`` had it)."""

    def __init__(self, listeners: int = 1) -> None:
        self.listeners = listeners
        self.answered: dict[str, float] = {}
        self.in_trail: dict[str, float] = {}
        self.alerted: dict[str, float] = {}
        self._heard: dict[str, set[int]] = {}

    def heard(self, milestone: str, listener: int) -> None:
        heard = self._heard.setdefault(milestone, set())
        heard.add(listener)
        if len(heard) == self.listeners:
            self.alerted.setdefault(milestone, time.monotonic())

    def clear(self) -> None:
        self.answered.clear()
        self.in_trail.clear()
        self.alerted.clear()
        self._heard.clear()

    def latencies(self, arrived: dict[str, float]) -> list[float]:
        return sorted(arrived[m] - at for m, at in self.answered.items() if m in arrived)


async def follow_alerts(arrivals: Arrivals, stop: asyncio.Event, listener: int, headers: dict[str, str]) -> None:
    timeout = aiohttp.ClientTimeout(total=None)
    async with (
        aiohttp.ClientSession(url("notifications"), headers=headers, timeout=timeout) as client,
        client.get("/v1/alerts/stream") as stream,
    ):
        async for line in stream.content:
            if line.startswith(b"data: "):
                alert = orjson.loads(line[6:])
                milestone = alert.get("data", {}).get("milestone_id")
                if milestone is not None:
                    arrivals.heard(milestone, listener)
            if stop.is_set():
                return


def listeners(count: int, arrivals: Arrivals, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The measured stream and ``count - 1`` more, each an official of the NDRC with a token of
    their own; an alert has arrived when every one of them has it."""
    tokens = [NDRC] + [
        {"Authorization": f"Bearer {mint_dev_token(f'u-ndrc-{n}', 'NDRC', ['supervisor'])}"} for n in range(1, count)
    ]
    return [asyncio.create_task(follow_alerts(arrivals, stop, n, headers)) for n, headers in enumerate(tokens)]


async def follow_trail(arrivals: Arrivals, stop: asyncio.Event) -> None:
    after = 0
    async with aiohttp.ClientSession(url("audit"), headers=NDRC, timeout=aiohttp.ClientTimeout(total=30)) as client:
        while not stop.is_set():
            params: dict[str, str | int] = {"type": "milestone.scheduled", "limit": 1000, "wait": 5}
            if after:
                params["cursor"] = encode_cursor(after)
            async with client.get("/v1/audit/events", params=params) as answer:
                items = orjson.loads(await answer.read())["items"]
            now = time.monotonic()
            for item in items:
                after = item["seq"]
                arrivals.in_trail.setdefault(item["event"]["data"]["milestone_id"], now)


async def post(client: aiohttp.ClientSession, path: str, body: object, headers: dict[str, str] = JILIN) -> Any:
    async with client.post(path, data=orjson.dumps(body), headers=headers) as answer:
        return answer.status, orjson.loads(await answer.read())


async def send_commands(arrivals: Arrivals, rate: int, seconds: int) -> int:
    """Sends ``rate`` commands a second for ``seconds`` (aiohttp: the load generator shares the
    machine's two cores with everything it measures, and httpx took 3-5 times the CPU)."""
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(url("tasks"), headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as client:
        plan = (await post(client, "/v1/plans", {"title": "latency"}, SC))[1]["id"]
        due = (datetime.now(UTC) + timedelta(days=365)).isoformat()
        tasks = [
            (
                await post(
                    client,
                    "/v1/tasks",
                    {"plan_id": plan, "title": f"t{n}", "field": "trade", "lead_department": "JILIN", "due": due},
                )
            )[1]["id"]
            for n in range(50)
        ]
        refused = 0

        async def one(n: int) -> None:
            nonlocal refused
            soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            task = tasks[n % len(tasks)]
            status, answer = await post(client, f"/v1/tasks/{task}/milestones", {"title": "m", "due": soon})
            if status == 201:
                arrivals.answered[answer["id"]] = time.monotonic()
            else:
                refused += 1

        started = time.monotonic()
        sent: list[asyncio.Task[None]] = []
        for n in range(rate * seconds):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            sent.append(asyncio.create_task(one(n)))
        await asyncio.gather(*sent)
        return refused


async def measure(
    rate: int, seconds: int, warm_up: int, system: dict[str, psutil.Process], streams: int = 1
) -> tuple[Arrivals, int, CpuMeter, BrokerRequests]:
    arrivals, stop = Arrivals(streams), asyncio.Event()
    followers = [*listeners(streams, arrivals, stop), asyncio.create_task(follow_trail(arrivals, stop))]
    # Not measured: the broker, just started, compiles its hot paths and the services make
    # their first calls. The broker's compiler threads (read per thread from /proc) took 0.4
    # of a core for the first 20 s after its start, 0.2-0.3 for the next 20, ~0.1 until 70 s;
    # after a 10 s warm-up they still took a sixth of the machine while this measured. Once the
    # warm-up's commands have all arrived, both followers are known to be connected too.
    await send_commands(arrivals, rate, warm_up)
    await all_arrived(arrivals)
    arrivals.clear()
    requests = BrokerRequests(system["broker"])
    with requests, CpuMeter(system) as meter:
        refused = await send_commands(arrivals, rate, seconds)
        await all_arrived(arrivals)
    stop.set()
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    return arrivals, refused, meter, requests


async def all_arrived(arrivals: Arrivals, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and (
        len(arrivals.in_trail) < len(arrivals.answered) or len(arrivals.alerted) < len(arrivals.answered)
    ):
        await asyncio.sleep(0.05)


def percentile(values: list[float], share: float) -> float:
    return values[max(0, int(len(values) * share) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=scaled(10, 5))
    parser.add_argument("--warm-up", type=int, default=scaled(30, 3), help="seconds of load before measuring")
    parser.add_argument("--listeners", type=int, default=1, help="officials following the alert stream")
    args = parser.parse_args()
    tune_interpreter()  # as the services do: the load generator's own collections would count as latency
    results = Results("latency")
    with tempfile.TemporaryDirectory() as folder, running_system(folder) as system:
        arrivals, refused, meter, requests = asyncio.run(
            measure(args.rate, args.seconds, args.warm_up, system, args.listeners)
        )
    followed = "" if args.listeners == 1 else f", {args.listeners} officials following the alert stream"
    print(f"\nAccepted command to its audit entry and to its SSE alert, {args.rate} commands/s{followed}")
    for name, arrived in (("audit entry", arrivals.in_trail), ("SSE alert", arrivals.alerted)):
        latencies = arrivals.latencies(arrived)
        results.add(
            Row(
                f"accepted command to its {name}: p99 at {args.rate} commands/s",
                percentile(latencies, 0.99) * 1000,
                "ms",
                target=50,
                target_of="value",
                lower_is_better=True,
            )
        )
        results.note(
            f"{name}: {len(latencies):,} of {len(arrivals.answered):,} accepted commands arrived; "
            f"p50 {statistics.median(latencies) * 1000:,.1f} ms, max {latencies[-1] * 1000:,.1f} ms"
        )
    commands = len(arrivals.answered)
    results.add(
        Row(
            f"whole-system CPU per accepted command at {args.rate} commands/s (broker and services, "
            "without the JIT's compiling)",
            meter.without_compiling(commands, ("broker", *PORTS)) * 1000,
            "ms",
            target=4,
            target_of="value",
            lower_is_better=True,
        )
    )
    results.note(meter.per(commands, "command"))
    results.note(requests.per(commands, "command"))
    if refused:
        results.note(f"{refused} commands were not accepted")
    results.save()


if __name__ == "__main__":
    main()
