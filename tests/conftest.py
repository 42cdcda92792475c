"""Fixtures that start real processes (the Kafka broker) and clean up after themselves."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka.consumer import partitions_of
from shared.settings import PROJECT_ROOT, KafkaSettings

KAFKA_SCRIPT = PROJECT_ROOT / "deploy" / "kafka.sh"
T = TypeVar("T")


@dataclass(frozen=True)
class Broker:
    """A broker started by deploy/kafka.sh; ``env`` is what the script needs to address it."""

    port: int
    data_dir: Path | None
    env: dict[str, str]

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=f"127.0.0.1:{self.port}")

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_SCRIPT), *args], env=self.env, capture_output=True, text=True, check=check, timeout=300
        )


def broker_env(port: int, data_dir: Path | None) -> dict[str, str]:
    env = {**os.environ, "POLICYTRACK_KAFKA_PORT": str(port)}
    if data_dir is not None:
        env["POLICYTRACK_KAFKA_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="session")
def kafka() -> Broker:
    """The project's broker on 127.0.0.1:9092, started by its own script if not running."""
    broker = Broker(port=9092, data_dir=None, env=broker_env(9092, None))
    started = broker.script("start", check=False)
    assert started.returncode == 0, f"deploy/kafka.sh start failed:\n{started.stderr}"
    return broker


@pytest.fixture
def spare_broker(tmp_path: Path) -> Iterator[Broker]:
    """A second, throw-away broker on its own ports and data folder, for tests that stop it."""
    broker = Broker(port=19092, data_dir=tmp_path / "kafka", env=broker_env(19092, tmp_path / "kafka"))
    started = broker.script("start", check=False)
    assert started.returncode == 0, f"spare broker failed to start:\n{started.stderr}"
    try:
        yield broker
    finally:
        broker.script("stop", check=False)


@pytest.fixture
def kafka_settings(kafka: Broker) -> KafkaSettings:
    return kafka.settings


@pytest.fixture
async def scratch_topic(kafka_settings: KafkaSettings) -> AsyncIterator[str]:
    """A topic of its own for one test, deleted afterwards."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        return await consumer.end_offsets(await partitions_of(consumer, [topic]))
    finally:
        await consumer.stop()


async def read_from(
    settings: KafkaSettings,
    starts: dict[TopicPartition, int],
    *,
    until: Callable[[list], bool],
    timeout: float = 30,
    isolation_level: str = "read_committed",
) -> list:
    """Read records from the given positions on, until ``until(records)`` holds or time runs out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level=isolation_level)
    await consumer.start()
    records: list = []
    try:
        consumer.assign(list(starts))
        for partition, offset in starts.items():
            consumer.seek(partition, offset)
        deadline = time.monotonic() + timeout
        while not until(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        await consumer.stop()
