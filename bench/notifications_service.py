"""Notifications: resident memory with 100,000 open milestones scheduled, and the latency from
due time to receipt of 1,000 alerts due in the same second at a local webhook receiver.

Runs against a throw-away broker of its own (``scratch_broker`` on port 19292), so the real
topics stay clean.    .venv/bin/python -m bench.notifications_service [--open 100000] [--burst 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import psutil

from bench.common import CpuMeter, PeakResident, ScratchBroker, fill, listening_on, scratch_broker
from bench.results import Results, Row, scaled
from shared.auth import mint_dev_token
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import new_event
from shared.contract.topics import EVENTS
from shared.kafka.producer import EventProducer
from shared.provenance.keys import KeyFolder
from shared.settings import PROJECT_ROOT

PORT, SERVICE_PORT = 19292, 18950
NDRC = {"Authorization": f"Bearer {mint_dev_token('u-bench', 'NDRC', ['supervisor'])}"}


def receiver(arrivals: list[tuple[float, str]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            arrivals.append((time.time(), orjson.loads(body)["data"]["milestone_id"]))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # socketserver's backlog is 5: the service's first connections, opened together, found
        # it full and waited a second for TCP to send their SYN again (a real receiver's is 511+).
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


YEAR = timedelta(days=365)


async def schedule(broker: ScratchBroker, tasks: int, per_task: int, due: datetime, prefix: str) -> None:
    """Tasks and their milestones on the events topic, as the tasks service's writer appends them."""
    signing = KeyFolder(broker.folder / "keys").signing_key("tasks", create=True)
    events = []
    for t in range(tasks):
        task_id = f"{prefix}-{t}"
        events += [
            c.TaskCreated(
                task_id=task_id,
                plan_id="p",
                title=f"Task {t}",
                field=CooperationField.TRADE,
                due=due + timedelta(days=365),
            ),
            c.TaskAssigned(
                task_id=task_id, lead_department=Department.JILIN, supporting_departments=(Department.MOFCOM,)
            ),
            *(
                c.MilestoneScheduled(task_id=task_id, milestone_id=f"{task_id}-m{m}", title=f"Milestone {m}", due=due)
                for m in range(per_task)
            ),
        ]
    async with EventProducer(broker.settings, client_id="bench-notifications", signing_key=signing) as producer:
        await fill(producer, EVENTS, (new_event(data, actor="u-bench", actordept=Department.JILIN) for data in events))


def settled(url: str, timeout: float = 60) -> dict[str, Any]:
    """The readiness once the service has written the snapshot its start owes (it does so as it
    goes live, serializing every deadline): resident memory read before that is a moment of the
    write, 16-50 MiB over the schedule's own at 100,000 deadlines."""
    deadline = time.monotonic() + timeout
    ready: dict[str, Any]
    while (ready := httpx.get(f"{url}/readyz", timeout=2).json())["events_since_snapshot"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no snapshot written in {timeout:.0f} s: {ready}")
        time.sleep(0.05)
    return ready


def start_service(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float, dict[str, Any], PeakResident]:
    """The service started and ready (caught up with the log), how long that took, its readiness,
    and its peak resident memory since its start (sampling until ``taken``)."""
    started = time.monotonic()
    service = subprocess.Popen(
        [sys.executable, "-m", "services.notifications"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = PeakResident(service.pid)
    while True:
        try:
            ready: dict[str, Any] = httpx.get(f"http://127.0.0.1:{SERVICE_PORT}/readyz", timeout=2).json()
            if ready.get("ready"):
                return service, time.monotonic() - started, ready, peak
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def main(open_milestones: int, burst: int) -> None:
    results = Results("notifications_service")
    with tempfile.TemporaryDirectory() as folder, scratch_broker(PORT, folder) as broker:
        service = None
        try:
            far = datetime.now(UTC) + timedelta(days=200)
            asyncio.run(schedule(broker, open_milestones // 100, 100, far, "open"))
            service_env = {
                **broker.env,
                "POLICYTRACK_ENV": "dev",
                "POLICYTRACK_LOG_LEVEL": "WARNING",
                "POLICYTRACK_NOTIFICATIONS_PORT": str(SERVICE_PORT),
            }
            service, rebuilt, ready, starting = start_service(service_env)
            url = f"http://127.0.0.1:{SERVICE_PORT}"
            process = psutil.Process(service.pid)
            rss_at_ready = process.memory_info().rss
            settled(url)
            rss_open = process.memory_info().rss
            results.add(
                Row(
                    f"notifications resident memory, {ready['open_deadlines']:,} open deadlines",
                    rss_open / 2**20,
                    "MiB",
                    target=200,
                    target_of="value",
                    lower_is_better=True,
                )
            )
            results.add(
                Row(
                    "notifications peak resident memory over its start (the log read, the first snapshot)",
                    starting.taken() / 2**20,
                    "MiB",
                )
            )
            results.note(
                f"the schedule of {ready['open_deadlines']:,} deadlines was rebuilt from the log in {rebuilt:.1f}s; "
                f"read once the start's snapshot was written (at ready, during its write: "
                f"{rss_at_ready / 2**20:,.1f} MiB)"
            )

            arrivals: list[tuple[float, str]] = []
            server = receiver(arrivals)
            subscribed = httpx.post(
                f"{url}/v1/subscriptions",
                headers=NDRC,
                json={
                    "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                    "event_types": ["alert.deadline_due"],
                },
            ).json()
            assert "secret" in subscribed, subscribed
            due = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
            asyncio.run(schedule(broker, burst // 10, 10, due, "burst"))
            if os.environ.get("BENCH_PROFILE"):
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-d",
                        "30",
                        "-o",
                        "/tmp/noti-profile.txt",
                        "-f",
                        "raw",
                        "-p",
                        str(service.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            deadline = time.time() + 120
            # The CPU of the burst: from its due time until the last alert has arrived.
            time.sleep(max(0.0, due.timestamp() - time.time()))
            meter = CpuMeter({"service": process, "broker": listening_on(PORT), "receiver": psutil.Process()})
            with meter:
                during = PeakResident(service.pid)
                while len(arrivals) < burst and time.time() < deadline:
                    time.sleep(0.01)
                peak = max(rss_open, during.taken())
            server.shutdown()
            latencies = sorted(at - due.timestamp() for at, _ in arrivals)
            if len(latencies) < burst:
                print(f"only {len(latencies)} of {burst} alerts arrived")
            p50 = statistics.median(latencies)
            p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
            results.add(
                Row(
                    f"{len(latencies):,} webhook alerts due in the same second: p99 due to 2xx",
                    p99 * 1000,
                    "ms",
                    target=350,
                    target_of="value",
                    lower_is_better=True,
                )
            )
            results.note(
                f"first {latencies[0] * 1000:,.0f} ms, p50 {p50 * 1000:,.0f} ms, max {latencies[-1] * 1000:,.0f} ms; "
                f"peak memory {peak / 2**20:,.0f} MiB"
            )
            results.note(meter.per(len(latencies), "alert"))
            service.terminate()  # a clean stop, as in a rolling restart
            service.wait()
            service, resumed, ready, _ = start_service(service_env)
            results.add(
                Row(
                    f"notifications start: snapshot + the {ready['events']:,} events after it",
                    resumed,
                    "s",
                    baseline=rebuilt,
                    lower_is_better=True,
                )
            )
            results.note(
                f"baseline of the start: the whole log read without a snapshot ({rebuilt:.1f}s); snapshot "
                f"{ready['snapshot']}, {ready['open_deadlines']:,} open deadlines after it"
            )
            results.save()
        finally:
            if service is not None:
                service.terminate()
                service.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=scaled(100_000, 10_000))
    parser.add_argument("--burst", type=int, default=1_000)
    args = parser.parse_args()
    main(args.open, args.burst)
