"""What the benchmarks share: throw-away topics on the real broker, throw-away brokers for the
benchmarks that run services, and how figures are printed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contract.envelope import AnyEvent
from shared.kafka.access import ADMIN
from shared.kafka.connection import client_options
from shared.kafka.producer import EventProducer
from shared.provenance.keys import KeyFolder
from shared.settings import PROJECT_ROOT, KafkaSettings


def local_admin() -> KafkaSettings:
    """The local broker of ``make bench`` (deploy/kafka.sh's), as its admin: benchmarks make and
    fill scratch topics there."""
    return KafkaSettings().as_user(ADMIN)


async def fill(producer: EventProducer, topic: str, events: Iterable[AnyEvent], *, run: int = 100) -> int:
    """Appends ``events`` to ``topic`` as a writer with its proof does: one signature per ``run``
    records of a partition, and the last of each partition signed (what a reader catching up on
    the tasks service's transactions meets). Returns how many were appended."""
    placed = [(event, await producer.partition_of(topic, event.subject.encode())) for event in events]
    last = {partition: n for n, (_, partition) in enumerate(placed)}
    seen: dict[int, int] = {}
    futures = []
    for n, (event, partition) in enumerate(placed):
        seen[partition] = seen.get(partition, 0) + 1
        sign = last[partition] == n or seen[partition] % run == 0
        futures.append(await producer.enqueue(event, topic=topic, partition=partition, sign=sign))
    await asyncio.gather(*futures)
    return len(placed)


_SCRATCH: list[tempfile.TemporaryDirectory[str]] = []


def scratch_folder(prefix: str) -> Path:
    """A folder of the benchmark's own, removed when its process ends."""
    _SCRATCH.append(tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True))
    return Path(_SCRATCH[-1].name)


def bench_keys() -> KeyFolder:
    """The keys of a benchmark's own installation, in a scratch folder."""
    return KeyFolder(scratch_folder("bench-keys-"))


@asynccontextmanager
async def bench_topic(kafka: KafkaSettings, partitions: int = 3) -> AsyncIterator[str]:
    """A topic for one benchmark run, deleted afterwards so the real topics stay clean."""
    name = f"bench.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


@dataclass(frozen=True)
class ScratchBroker:
    """A broker (or cluster) of one benchmark's own, started by deploy/kafka.sh in a scratch folder."""

    port: int
    folder: Path
    nodes: int = 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + node}" for node in range(self.nodes))

    @property
    def env(self) -> dict[str, str]:
        """What a service run against this broker needs, its data kept in the scratch folder too."""
        return {
            **os.environ,
            "POLICYTRACK_KAFKA_PORT": str(self.port),
            "POLICYTRACK_KAFKA_DATA_DIR": str(self.folder / "kafka"),
            "POLICYTRACK_KAFKA_CREDENTIALS_DIR": str(self.folder / "kafka-credentials"),
            "POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "POLICYTRACK_DATA_DIR": str(self.folder / "data"),
            "POLICYTRACK_KEYS_DIR": str(self.folder / "keys"),
        }

    @property
    def settings(self) -> KafkaSettings:
        """The benchmark's own clients: the broker's admin, who may make and fill scratch topics."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            username=ADMIN,
            credentials_dir=self.folder / "kafka-credentials",
        )

    def script(self, *args: str, check: bool = True) -> None:
        script = str(PROJECT_ROOT / "deploy" / "kafka.sh")
        subprocess.run([script, *args], env=self.env, check=check, capture_output=True)


@contextmanager
def scratch_broker(port: int, folder: str | Path, nodes: int = 1) -> Iterator[ScratchBroker]:
    """A benchmark that runs services runs them here: the broker and data folder of ``make run``
    stay as they were (each run of the tasks benchmark once left its commands on that broker's
    log and a snapshot of up to 600 MiB in its data folder)."""
    broker = ScratchBroker(port, Path(folder), nodes)
    broker.script("start", *(("--nodes", str(nodes)) if nodes > 1 else ()))
    try:
        yield broker
    finally:
        broker.script("stop", check=False)


@dataclass
class Timed:
    count: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class stopwatch:
    def __init__(self, result: Timed) -> None:
        self.result = result

    def __enter__(self) -> Timed:
        self._start = time.perf_counter()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.result.seconds = time.perf_counter() - self._start


def listening_on(port: int) -> psutil.Process:
    """The process that listens on ``port`` of this machine (the broker a benchmark runs on)."""
    for connection in psutil.net_connections(kind="tcp"):
        address = connection.laddr
        if connection.status == psutil.CONN_LISTEN and getattr(address, "port", None) == port and connection.pid:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"nothing listens on port {port}")


class PeakResident(threading.Thread):
    """The highest resident memory of a process (this one when no ``pid`` is given), sampled
    every ``every`` seconds from now until ``taken``."""

    def __init__(self, pid: int | None = None, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self._every = psutil.Process(pid), 0, every
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
            if self._done.wait(self._every):
                return

    def taken(self) -> int:
        self._done.set()
        self.join()
        return self.peak


@dataclass
class CpuMeter:
    """The CPU seconds each named process spends while the meter runs: where a benchmark's
    cores go, so that a missed target can be read against what the machine has to give. A
    JVM's compiler threads are counted apart: compiling its hot paths is what a broker does
    for its first minutes, not what each request costs it."""

    processes: dict[str, psutil.Process]
    spent: dict[str, float] = field(default_factory=dict)
    compiling: dict[str, float] = field(default_factory=dict)
    """Of ``spent``, the seconds a JVM's JIT compiler threads took."""
    seconds: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._before = {name: _cpu(process) for name, process in self.processes.items()}
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started
        after = {name: _cpu(process) for name, process in self.processes.items()}
        self.spent = {name: after[name][0] - self._before[name][0] for name in after}
        self.compiling = {name: after[name][1] - self._before[name][1] for name in after}

    def per(self, count: int, unit: str) -> str:
        """E.g. "CPU per alert: service 610 µs, broker 350 µs (JIT compiler 120); 1.1 s of CPU in
        0.8 s on 2 cores"."""
        each = ", ".join(
            f"{name} {spent / count * 1e6:,.0f} µs"
            + (f" (JIT compiler {self.compiling[name] / count * 1e6:,.0f})" if self.compiling.get(name) else "")
            for name, spent in self.spent.items()
        )
        return (
            f"CPU per {unit}: {each}; {sum(self.spent.values()):,.2f} s of CPU in {self.seconds:,.2f} s "
            f"on {os.cpu_count()} cores"
        )

    def without_compiling(self, count: int, of: Collection[str]) -> float:
        """CPU seconds per ``count`` of the processes named ``of``, without JIT compilation."""
        return sum(self.spent[name] - self.compiling[name] for name in of) / count


def _cpu(process: psutil.Process) -> tuple[float, float]:
    """The process's CPU seconds, and of them its JIT compiler threads' (named "C1/C2 CompilerThread")."""
    times = process.cpu_times()
    compiling = 0.0
    for thread in process.threads():
        try:
            name = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith(("C1 Compiler", "C2 Compiler")):
            compiling += thread.user_time + thread.system_time
    return float(times.user + times.system), compiling


@contextmanager
def services_running(
    broker: ScratchBroker, ports: Mapping[str, int], folder: str | Path, **env: str
) -> Iterator[dict[str, psutil.Process]]:
    """The services named in ``ports``, each a process of its own on its port against
    ``broker`` (its data in ``folder``; the keys are the broker's installation's, so that each
    trusts the others' writer's proofs), ready, by name, until the block ends."""
    processes = []
    try:
        for service, port in ports.items():
            service_env = {
                **broker.env,
                "POLICYTRACK_ENV": "dev",
                "POLICYTRACK_LOG_LEVEL": "WARNING",
                "POLICYTRACK_DATA_DIR": f"{folder}/{service}",
                f"POLICYTRACK_{service.upper()}_PORT": str(port),
                "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-bench-{uuid.uuid4().hex[:8]}",
                **env,
            }
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", f"services.{service}"],
                    env=service_env,
                    cwd=PROJECT_ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports.values():
            wait_ready(f"http://127.0.0.1:{port}")
        yield {service: psutil.Process(p.pid) for service, p in zip(ports, processes, strict=True)}
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def wait_ready(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).json().get("ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not become ready")


class BrokerRequests:
    """How many requests of each kind a broker answered while the block ran, from its own
    metrics: JMX, read with Kafka's JmxTool (the agent started in the running JVM by jcmd)."""

    def __init__(self, broker: psutil.Process) -> None:
        self.broker = broker
        self.answered: dict[str, float] = {}
        self.unavailable: str | None = None
        """Why the requests could not be counted (a JRE without jcmd, say): the figures stand without."""
        command = broker.cmdline()
        self._classpath = command[command.index("-cp") + 1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        self._run(
            [
                "jcmd",
                str(broker.pid),
                "ManagementAgent.start",
                f"jmxremote.port={self._port}",
                f"jmxremote.rmi.port={self._port}",
                "jmxremote.authenticate=false",
                "jmxremote.ssl=false",
                "jmxremote.host=127.0.0.1",
            ]
        )

    def __enter__(self) -> BrokerRequests:
        self._before = self._counts()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._counts()
        self.answered = {
            kind: n - self._before.get(kind, 0) for kind, n in after.items() if n > self._before.get(kind, 0)
        }

    def per(self, count: int, unit: str) -> str:
        """E.g. "broker requests per command: 2.4 (Fetch 1.10, Produce 0.54, ...)"."""
        if self.unavailable is not None:
            return f"broker requests not counted: {self.unavailable}"
        kinds = sorted(self.answered.items(), key=lambda item: -item[1])
        each = ", ".join(f"{kind} {n / count:.2f}" for kind, n in kinds if n / count >= 0.01)
        return f"broker requests per {unit}: {sum(self.answered.values()) / count:.2f} ({each})"

    def _run(self, command: list[str]) -> str:
        if self.unavailable is not None:
            return ""
        try:
            return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as error:
            self.unavailable = f"{command[0]}: {error}"
            return ""

    def _counts(self) -> dict[str, float]:
        shown = self._run(
            [
                "java",
                "-Xmx128m",
                "-cp",
                self._classpath,
                "org.apache.kafka.tools.JmxTool",
                "--jmx-url",
                f"service:jmx:rmi:///jndi/rmi://127.0.0.1:{self._port}/jmxrmi",
                "--object-name",
                "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*,version=*",
                "--attributes",
                "Count",
                "--one-time",
                "true",
                "--report-format",
                "properties",
            ]
        )
        counts: dict[str, float] = {}
        for line in shown.splitlines():
            if "request=" in line and ":Count=" in line:
                name, count = line.rsplit(":Count=", 1)
                kind = name.split("request=", 1)[1].split(",", 1)[0]
                # FetchConsumer and FetchFollower are kinds of Fetch, counted again under their own name
                if kind not in ("FetchConsumer", "FetchFollower"):
                    counts[kind] = counts.get(kind, 0) + float(count)
        return counts
