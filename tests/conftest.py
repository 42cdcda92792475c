"""Fixtures that start real processes (the Kafka broker) and clean up after themselves."""

from __future__ import annotations

import asyncio
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import RecordMetadata
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from policytrack.processes import ServiceProcess
from shared.auth import mint_dev_token
from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.envelope import new_event
from shared.contract.topics import COMMANDS
from shared.kafka.access import ADMIN, TASKS_PREFIX
from shared.kafka.connection import client_options
from shared.kafka.consumer import open_consumer, partitions_of, read_since
from shared.kafka.producer import EventProducer
from shared.logging import configure_logging
from shared.provenance.acts import sign_command
from shared.provenance.gate import ProofGate
from shared.provenance.keys import KeyFolder, SigningKey
from shared.settings import PROJECT_ROOT, KafkaSettings, RuntimeSettings
from tests.samples import plan_log

KAFKA_SCRIPT = PROJECT_ROOT / "deploy" / "kafka.sh"
T = TypeVar("T")
configure_logging(RuntimeSettings(log_level="WARNING"))  # what runs in process logs as the services do


@dataclass(frozen=True)
class Broker:
    """A broker started by deploy/kafka.sh; ``env`` is what the script needs to address it."""

    port: int
    data_dir: Path
    env: dict[str, str]

    @property
    def credentials_dir(self) -> Path:
        return Path(self.env["POLICYTRACK_KAFKA_CREDENTIALS_DIR"])

    @property
    def settings(self) -> KafkaSettings:
        """The tests' own clients connect as the broker's admin: they set up and inspect, and
        play the outsider who writes what no service would."""
        return self.as_principal(ADMIN)

    def service_env(self, bootstrap_servers: str | None = None) -> dict[str, str]:
        """What a service process needs to reach this broker as its own principal."""
        return {
            "POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers or self.settings.bootstrap_servers,
            "POLICYTRACK_KAFKA_CREDENTIALS_DIR": str(self.credentials_dir),
        }

    def kcat(self, *args: str, timeout: float = 120) -> bytes:
        """What kcat shows, run the way docs/operations.md says: ``-F`` the config the broker
        script writes (the operator principal, which reads and never writes)."""
        return subprocess.run(
            ["kcat", "-F", str(self.credentials_dir / "kcat.conf"), *args],
            capture_output=True,
            timeout=timeout,
            check=True,
        ).stdout

    def as_principal(self, username: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{self.port}", username=username, credentials_dir=self.credentials_dir
        )

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_SCRIPT), *args], env=self.env, capture_output=True, text=True, check=check, timeout=300
        )


ServiceFactory = Callable[..., ServiceProcess]
"""Starts a service of the project as its own process: ``factory("tasks", **environment).start()``."""


TEST_BROKER_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""The tests' brokers live for minutes on two shared cores: compiling only with C1 and collecting
with one thread costs them about a third less CPU to start and to idle (bench/broker_start.py)."""


def broker_env(port: int, data_dir: Path) -> dict[str, str]:
    return {
        "POLICYTRACK_KAFKA_JAVA_OPTIONS": TEST_BROKER_JVM,
        **os.environ,
        "POLICYTRACK_KAFKA_PORT": str(port),
        "POLICYTRACK_KAFKA_DATA_DIR": str(data_dir),
        "POLICYTRACK_KAFKA_CREDENTIALS_DIR": f"{data_dir}-credentials",
    }


WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
"""Which of ``make test``'s parallel workers this is (pytest-xdist): each has its own brokers and
database server, on ports of its own."""
SINGLE_NODE = (0, 1)
"""A broker's client port and, one after it, its controller's (deploy/kafka.sh)."""
THREE_NODES = (0, 1, 2, 100, 101, 102)


def configured_port(variable: str) -> int | None:
    """A port the environment fixes (plus 1000 a worker), or None: chosen free at run time."""
    port = os.environ.get(variable)
    return None if port is None else int(port) + 1000 * WORKER


SERVICE_PORTS = range(10_000, 20_000)
"""Where ``free_port`` picks services' ports, each worker in a share of its own."""
BROKER_PORTS = range(20_000, 32_000)
"""Where ``free_block`` picks brokers' and database servers' ports. Both ranges lie below the
kernel's ephemeral range, where the near end of any outgoing connection may take the port of a
stopped service or broker before it starts again on it (CI saw one restart refused so)."""
_SHARES = 8
_OWN_SERVICE_PORTS = SERVICE_PORTS[WORKER % _SHARES :: _SHARES]
_HANDED_OUT: set[int] = set()


def free_block(*offsets: int) -> int:
    """A port P of ``BROKER_PORTS`` with P + each offset free now."""
    return _first_free(BROKER_PORTS, offsets)


def free_port() -> int:
    """A port nothing listens on now, in this worker's share of ``SERVICE_PORTS``, and never handed
    out before in this run: a service restarted on it finds it still its own."""
    port = _first_free(_OWN_SERVICE_PORTS, (0,), taken=_HANDED_OUT)
    _HANDED_OUT.add(port)
    return port


def _first_free(ports: range, offsets: tuple[int, ...], taken: AbstractSet[int] = frozenset()) -> int:
    """A port of ``ports``, picked at random, with it + each offset free now and it not ``taken``."""
    chooser = random.SystemRandom()
    for _ in range(500):
        base = chooser.choice(ports)
        if base not in taken and all(_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError(f"no free block of ports {offsets} found in {ports}")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def started_broker(data_dir: Path, variable: str, offsets: tuple[int, ...], *args: str) -> Iterator[Broker]:
    """A broker of the project's script on ports the environment fixes or, by default, on free
    ones (tried again on others if another process takes them first); stopped afterwards."""
    for _attempt in range(3):
        port = configured_port(variable) or free_block(*offsets)
        broker = Broker(port=port, data_dir=data_dir, env=broker_env(port, data_dir))
        started = broker.script("start", *args, check=False)
        if started.returncode == 0:
            break
        broker.script("stop", check=False)
        if "is taken" not in started.stderr or configured_port(variable) is not None:
            raise AssertionError(f"deploy/kafka.sh start {' '.join(args)} failed:\n{started.stderr}")
    else:
        raise AssertionError(f"deploy/kafka.sh start found its ports taken three times:\n{started.stderr}")
    try:
        yield broker
    finally:
        broker.script("stop", check=False)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of the test session's own, on its own ports and data folder, started by the
    project's script and stopped at the end: ``make test`` leaves ``make run``'s trail alone,
    and another checkout's suite running at the same time."""
    with started_broker(tmp_path_factory.mktemp("kafka"), "POLICYTRACK_TEST_KAFKA_PORT", SINGLE_NODE) as broker:
        yield broker


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path, for a process's TMPDIR: a process server's socket
    path in it has at most 107 bytes, more than pytest's folders leave."""
    folder = Path(tempfile.mkdtemp(prefix="pt-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def spare_broker(tmp_path: Path) -> Iterator[Broker]:
    """A second, throw-away broker on its own ports and data folder, for tests that stop it."""
    with started_broker(tmp_path / "kafka", "POLICYTRACK_TEST_SPARE_KAFKA_PORT", SINGLE_NODE) as broker:
        yield broker


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Broker]:
    """Three KRaft nodes (``deploy/kafka.sh start --nodes 3``) on a port and the two after it."""
    variable = "POLICYTRACK_TEST_CLUSTER_KAFKA_PORT"
    with started_broker(tmp_path / "kafka", variable, THREE_NODES, "--nodes", "3") as broker:
        yield broker


def cluster_settings(cluster: Broker) -> KafkaSettings:
    """How clients reach every node of the cluster (as its admin)."""
    bootstrap = ",".join(f"127.0.0.1:{cluster.port + i}" for i in range(3))
    return cluster.settings.model_copy(update={"bootstrap_servers": bootstrap, "request_timeout_ms": 10_000})


async def plan_log_with_a_forgery(settings: KafkaSettings, key: SigningKey, topic: str) -> None:
    """The plan's log by its writer, and a record on the second partition that is not its."""
    async with EventProducer(settings, client_id="test-plan-log", signing_key=key) as producer:
        await asyncio.gather(*[await producer.enqueue(event, topic=topic) for event in plan_log()])
    forged = encode(new_event(c.TaskCompleted(task_id="task-0", note="forged"), actor="u-jilin-1"))
    plain = AIOKafkaProducer(**client_options(settings), acks="all")
    await plain.start()
    try:
        await plain.send_and_wait(topic, forged.value, key=forged.key, headers=list(forged.headers), partition=1)
    finally:
        await plain.stop()


@pytest.fixture
def kafka_settings(kafka: Broker) -> KafkaSettings:
    return kafka.settings


@pytest.fixture
async def scratch_topic(kafka_settings: KafkaSettings) -> AsyncIterator[str]:
    """A topic of its own for one test, deleted afterwards."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**client_options(kafka_settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def resolved(value: T) -> T:
    """A value already known, as an awaitable: for ``eventually`` over a condition read at once."""
    return value


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def end_offsets(settings: KafkaSettings, topic: str) -> dict[TopicPartition, int]:
    async with open_consumer(settings, isolation_level="read_uncommitted") as consumer:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(await partitions_of(consumer, [topic]))
        return ends


async def read_from(
    settings: KafkaSettings,
    starts: dict[TopicPartition, int],
    *,
    until: Callable[[list[Any]], bool],
    timeout: float = 30,
    isolation_level: str = "read_committed",
) -> list[Any]:
    """Read records from the given positions on, until ``until(records)`` holds or time runs out."""
    records: list[Any] = []
    async with open_consumer(settings, isolation_level=isolation_level) as consumer:
        consumer.assign(list(starts))
        for partition, offset in starts.items():
            consumer.seek(partition, offset)
        deadline = time.monotonic() + timeout
        while not until(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
    return records


async def readiness(service: ServiceProcess) -> dict[str, Any]:
    """What the service's ``/readyz`` says now, ready or not."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        answer: dict[str, Any] = (await client.get("/readyz")).json()
        return answer


async def caught_up(service: ServiceProcess, *, timeout: float = 120) -> dict[str, Any]:
    """Poll a consuming service's readiness until it reports no lag; that readiness."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:

        async def probe() -> dict[str, Any] | None:
            ready: dict[str, Any] = (await client.get("/readyz")).json()
            return ready if ready.get("lag") == 0 else None

        return await eventually(probe, timeout=timeout, what=f"{service.name} caught up with the log")


async def plan_and_task(client: httpx.AsyncClient, **task: object) -> str:
    """A plan the State Council approved and one task in it, created by JILIN; the task's id.
    The task is Jilin's trade facilitation unless ``task`` says otherwise."""
    plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
    body = {
        "title": "Trade facilitation",
        "field": "trade",
        "lead_department": "JILIN",
        "due": "2030-01-01T00:00:00Z",
        **task,
    }
    return str((await client.post("/v1/tasks", headers=JILIN, json={"plan_id": plan, **body})).json()["id"])


async def whole_trail(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every entry of an audit service's trail, page by page (the session's broker holds what
    earlier tests wrote, so the first page is not the whole story)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/audit/events", headers=NAO, params=params)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        page = answer.json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def read_to_end(settings: KafkaSettings, topic: str, *, timeout: float = 60) -> list[Any]:
    """Every committed record on ``topic``, from its start to where it ends now."""
    return await read_since(settings, topic, 0, timeout=timeout)


# --- service processes ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The keys of the suite's one installation: every service the suite starts signs with its
    owner's key from here and trusts the keys filed here, whichever broker it uses (the session
    broker's log holds what every test wrote, and all of it is this installation's)."""
    return tmp_path_factory.mktemp("keys")


@contextmanager
def services_on(kafka: Broker, directory: Path, keys: Path) -> Iterator[ServiceFactory]:
    """Makes service processes against the project's broker; all are stopped afterwards."""
    made: list[ServiceProcess] = []

    def make(name: str, **env: str) -> ServiceProcess:
        port = free_port()
        prefix = f"POLICYTRACK_{name.upper()}_"
        process_env = {
            **os.environ,
            "POLICYTRACK_ENV": "dev",
            "POLICYTRACK_LOG_LEVEL": "INFO",
            "POLICYTRACK_DATA_DIR": str(directory / f"{name}-{port}"),
            **kafka.service_env(),
            # One installation: the services share a keys folder, so each trusts the others' keys.
            "POLICYTRACK_KEYS_DIR": str(keys),
            "POLICYTRACK_AUDIT_CHAIN_ID": f"test-chain-{uuid.uuid4().hex[:8]}",
            # Assessments append events on their own schedule; tests that count events turn them on.
            "POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "0",
            f"{prefix}PORT": str(port),
            f"{prefix}TRANSACTIONAL_ID": f"{TASKS_PREFIX}-test-{uuid.uuid4().hex[:8]}",
            **env,
        }
        service = ServiceProcess(name, port, process_env, directory / f"{name}-{port}.log")
        made.append(service)
        return service

    try:
        yield make
    finally:
        for service in made:
            service.stop()


@pytest.fixture
def service_factory(kafka: Broker, tmp_path: Path, keys_dir: Path) -> Iterator[ServiceFactory]:
    """Service processes for one test."""
    with services_on(kafka, tmp_path, keys_dir) as make:
        yield make


@pytest.fixture(scope="module")
def module_services(
    kafka: Broker, tmp_path_factory: pytest.TempPathFactory, keys_dir: Path
) -> Iterator[ServiceFactory]:
    """Service processes shared by the tests of one module."""
    with services_on(kafka, tmp_path_factory.mktemp("services"), keys_dir) as make:
        yield make


def writer_key(keys: Path, owner: str = "tasks") -> SigningKey:
    """The signing key of ``owner`` in the installation whose keys are in ``keys`` (made, and
    trusted, if it is not yet): what a test writes with when it plays that service."""
    return KeyFolder(keys).signing_key(owner, create=True)


@pytest.fixture
def tasks_key(keys_dir: Path) -> SigningKey:
    """The tasks service's key of the suite's installation."""
    return writer_key(keys_dir)


Record = tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]
"""A record to send: its key, value and headers."""


@dataclass(frozen=True)
class DepartmentSystem:
    """A department's system in a test: it signs each command with the department's registered
    key and sends it on ``policy.commands`` as the department's own principal."""

    broker: Broker
    key: SigningKey
    user: str
    roles: tuple[str, ...]

    def command(
        self,
        name: str,
        body: dict[str, object],
        *,
        correlation: str | None = None,
        idempotency_key: str | None = None,
        if_match: int | None = None,
    ) -> Record:
        value = orjson.dumps(body)
        signature = sign_command(
            self.key,
            name,
            value,
            user=self.user,
            roles=list(self.roles),
            idempotency_key=idempotency_key or f"idk-{uuid.uuid4().hex}",
            correlation_id=correlation,
            if_match=if_match,
        )
        headers: list[tuple[str, bytes | None]] = [("command", name.encode()), ("signature", signature)]
        if correlation is not None:
            headers.append(("correlationid", correlation.encode()))
        subject = next((str(body[k]) for k in ("task_id", "plan_id", "issue_id") if k in body), None)
        return (subject.encode() if subject else None), value, headers

    async def send(self, *records: Record, partition: int | None = None) -> list[RecordMetadata]:
        """Sends the records in order; where each was written."""
        principal = f"dept-{self.key.owner.lower()}"
        producer = AIOKafkaProducer(**client_options(self.broker.as_principal(principal)), acks="all")
        await producer.start()
        try:
            return [
                await producer.send_and_wait(COMMANDS, value, key=key, headers=headers, partition=partition)
                for key, value, headers in records
            ]
        finally:
            await producer.stop()


def department_system(broker: Broker, keys: Path, department: str, user: str, *roles: str) -> DepartmentSystem:
    """The system of ``department`` (its key registered in the installation's ``keys``)."""
    return DepartmentSystem(broker, writer_key(keys, department), user, roles)


def scratch_gate(keys: Path, topic: str, owner: str = "tasks") -> ProofGate:
    """A reader's check of writers' proofs for a test's own topic: ``owner``'s keys in the
    installation's ``keys`` may write it."""
    return ProofGate(KeyFolder(keys).trust(), {topic: {owner}})


def token(user: str, department: str, *roles: str) -> dict[str, str]:
    """Authorization header with a development token."""
    return {"Authorization": f"Bearer {mint_dev_token(user, department, list(roles))}"}


# Who acts in the tests: one user per department, with the role the reply gives it.
SC = token("u-sc", "SC", "approver")
JILIN = token("u-jilin", "JILIN", "implementer")
MIIT = token("u-miit", "MIIT", "supporter")
MOST = token("u-most", "MOST", "supporter")
MEE = token("u-mee", "MEE", "supporter")
NDRC = token("u-ndrc", "NDRC", "supervisor")
NAO = token("u-nao", "NAO", "auditor")


async def new_task(client: httpx.AsyncClient, plan: str, n: int) -> str:
    """The id of a new task ``Task n`` in ``plan``, JILIN leading."""
    body = {
        "plan_id": plan,
        "title": f"Task {n}",
        "field": "trade",
        "lead_department": "JILIN",
        "due": "2030-01-01T00:00:00Z",
    }
    answer = await client.post("/v1/tasks", headers=JILIN, json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def tasks_of_a_new_plan(client: httpx.AsyncClient, count: int) -> list[str]:
    """The ids of ``count`` tasks JILIN leads in a plan the State Council approves for them."""
    plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
    return [await new_task(client, plan, n) for n in range(count)]


async def records_since(settings: KafkaSettings, topic: str, starts: dict[TopicPartition, int]) -> list[Any]:
    """The committed records appended to ``topic`` after ``starts`` (transaction markers take an
    offset each, so counting offsets would overcount)."""
    records: list[Any] = []
    async with open_consumer(settings) as consumer:
        ends = await consumer.end_offsets(list(starts))
        pending = {tp for tp in starts if ends[tp] > starts[tp]}
        consumer.assign(list(starts))
        for partition, offset in starts.items():
            consumer.seek(partition, offset)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for partition_records in (await consumer.getmany(*pending, timeout_ms=200)).values():
                records.extend(partition_records)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    return records


# --- local HTTP servers ------------------------------------------------------------------------------


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    """``handler`` served on 127.0.0.1 (on ``port``, or one the kernel picks) from a thread of
    its own, until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- a webhook receiver ------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver: records what arrives; answers 503 while ``down``, and sets the cookie
    ``sets_cookie`` (a Set-Cookie value) with every answer when given one."""

    down: bool = False
    sets_cookie: str | None = None
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/policytrack"

    def alerts(self, secret: str) -> list[tuple[float, dict[str, Any]]]:
        """Every delivery, verified with the standardwebhooks library, as (arrival, CloudEvent)."""
        return [(at, Webhook(secret).verify(body, headers)) for at, headers, body in self.received]

    def for_milestone(self, secret: str, milestone_id: str) -> list[tuple[float, str]]:
        return [
            (at, event["type"].split(".")[3])
            for at, event in self.alerts(secret)
            if event["data"].get("milestone_id") == milestone_id
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if state.down:
                state.refused += 1
                self.send_response(503)
            else:
                state.received.append((time.time(), {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
            if state.sets_cookie is not None:
                self.send_header("Set-Cookie", state.sets_cookie)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as server:
        state.port = server.server_port
        yield state


# --- a mail server ---------------------------------------------------------------------------------


@dataclass
class Mailroom:
    """A real SMTP server (aiosmtpd, in its own thread): keeps what arrives; refuses the
    recipients whose mailbox is ``refuse`` and never answers for those whose mailbox is ``hang``."""

    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)
    refused: int = 0
    hung: int = 0

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.received if message["To"] == address]


@contextmanager
def running_mailroom() -> Iterator[Mailroom]:
    state = Mailroom()

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            mailbox = address.partition("@")[0]
            if mailbox == "refuse":
                state.refused += 1
                return "550 5.1.1 mailbox unavailable"
            if mailbox == "hang":
                state.hung += 1
                await asyncio.Event().wait()  # until the server stops
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.received.append(message_from_bytes(envelope.content, policy=email_policy.default))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    state.port = controller.port
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture
def mailroom() -> Iterator[Mailroom]:
    with running_mailroom() as state:
        yield state


def smtp_of(mailroom: Mailroom, **settings: object) -> str:
    """``POLICYTRACK_NOTIFICATIONS_SMTP`` for a notifications service that mails ``mailroom``."""
    return orjson.dumps({"host": "127.0.0.1", "port": mailroom.port, "security": "none", **settings}).decode()


# --- PostgreSQL ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL server (Debian's binaries), run as the postgres user when root.

    Its folder is its own, outside pytest's: every pytest session that starts sets pytest's
    folder back to 0700, which cut a running server off from its own data (another checkout's
    ``make test``, or a single test run beside the suite)."""
    initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert initdb, "PostgreSQL server binaries not found: apt-get install postgresql (make test does)"
    bin_dir = initdb[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="policytrack-postgres-"))
    data, port = folder / "data", configured_port("POLICYTRACK_TEST_POSTGRES_PORT") or free_block(0)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        postgres = pwd.getpwnam("postgres")
        os.chown(folder, postgres.pw_uid, postgres.pw_gid)
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def postgres_dsn(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own for one test, on the session's PostgreSQL server."""
    import asyncpg

    name = f"audit_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.replace("+asyncpg", ""))
    try:
        await admin.execute(f"create database {name}")
        yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.close()


@dataclass
class Browser:
    """Debian's chromium, headless, driven by Selenium through chromium-driver. It can reach no
    host but 127.0.0.1, and remembers every request its pages made."""

    driver: Any
    screenshots: Path

    def requested_hosts(self) -> set[str]:
        hosts = set()
        for line in self.driver.get_log("performance"):
            message = orjson.loads(line["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = urlsplit(message["params"]["request"]["url"])
                if url.scheme in ("http", "https", "ws", "wss"):
                    hosts.add(url.hostname or "")
        return hosts

    def screenshot(self, name: str) -> Path:
        """The whole page, saved under the test's output (and POLICYTRACK_SCREENSHOTS, if set)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(800, min(int(height) + 40, 4000)))
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        if keep := os.environ.get("POLICYTRACK_SCREENSHOTS"):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        self.driver.set_window_size(1280, 1000)
        return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "make test installs Debian's chromium and chromium-driver (make tools)"
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the suite may run as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        # The network cut off: every name but 127.0.0.1 fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-proxy-server",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--lang=zh-CN",  # the people the dashboard is for read Chinese first
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # Chromium leaves its singleton socket's folder in the temporary folder: here one of the
    # browser's own, removed after it (short: a socket's path has at most 107 bytes).
    scratch = tempfile.mkdtemp(prefix="pt-chromium-")
    service = Service(
        executable_path=chromedriver,
        log_output=str(tmp_path / "chromedriver.log"),
        env={**os.environ, "TMPDIR": scratch},
    )
    try:
        driver = webdriver.Chrome(service=service, options=options)
        screenshots = tmp_path / "screenshots"
        screenshots.mkdir()
        try:
            yield Browser(driver, screenshots)
        finally:
            driver.quit()
            print(f"screenshots: {screenshots}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the order the workers take the files in -------------------------------------------------------

LONGEST_FIRST = (
    "tests/e2e/test_api_fuzzing_audit.py",
    "tests/reliability/test_live_verification.py",
    "tests/e2e/test_api_fuzzing_tasks.py",
    "tests/e2e/test_api_fuzzing_notifications.py",
    "tests/reliability/",
    "tests/e2e/",
    "tests/integration/",
)
"""The order the files are collected in: the long ones first (the four longest by name, then the
folders whose files take longest). pytest-xdist 3 hands ``--dist loadfile`` work out by number of
tests a file, most first, and keeps this order only among files with as many tests. Turning its
reordering off (``--no-loadscope-reorder``) was measured: slower, the heavy files all running at
once at the start (docs/performance.md, "The test suite's time")."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).relative_to(PROJECT_ROOT).as_posix()
        return next((n for n, prefix in enumerate(LONGEST_FIRST) if path.startswith(prefix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: each file's tests keep their order
