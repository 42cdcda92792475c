"""The broker lets in only the principals it names, and each may do only what its ACLs grant
(shared/kafka/access.py): tried with real clients against the suite's broker."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import SecretStr

from shared.contract.topics import ALERTS, AUDIT, COMMANDS, DEADLETTER, EVENTS
from shared.kafka.connection import client_options
from shared.settings import KafkaSettings
from tests.conftest import Broker

ALL_TOPICS = (COMMANDS, EVENTS, ALERTS, DEADLETTER, AUDIT)


async def produces(options: dict[str, Any], topic: str) -> bool:
    """Whether a record sent with these client options is acknowledged by the broker."""
    producer = AIOKafkaProducer(**{**options, "request_timeout_ms": 5_000}, acks="all")
    try:
        await asyncio.wait_for(producer.start(), 10)
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"probe"), 10)
    except (KafkaError, KafkaConnectionError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(producer.stop(), 5)
    return True


async def consumes(options: dict[str, Any], topic: str) -> bool:
    """Whether a consumer with these options is given the topic's records (its end offset)."""
    consumer = AIOKafkaConsumer(**{**options, "request_timeout_ms": 5_000}, enable_auto_commit=False)
    try:
        await asyncio.wait_for(consumer.start(), 10)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await asyncio.wait_for(consumer.seek_to_beginning(partition), 10)
        await asyncio.wait_for(consumer.getmany(partition, timeout_ms=500), 10)
        await asyncio.wait_for(consumer.end_offsets([partition]), 10)
    except (KafkaError, KafkaConnectionError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(consumer.stop(), 5)
    return True


def anonymous(kafka: Broker) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.settings.bootstrap_servers}


@pytest.mark.parametrize("topic", ALL_TOPICS)
async def test_without_credentials_nothing_is_produced_or_consumed(kafka: Broker, topic: str) -> None:
    assert not await produces(anonymous(kafka), topic)
    assert not await consumes(anonymous(kafka), topic)
    wrong = kafka.as_principal("svc-tasks").model_copy(update={"password": SecretStr("not-the-password")})
    assert not await produces(client_options(wrong), topic)
    assert not await consumes(client_options(wrong), topic)


@pytest.mark.parametrize("principal", ["svc-notifications", "svc-audit", "operator", "dept-jilin", "dept-mofcom"])
async def test_only_the_tasks_service_writes_the_domain_events(kafka: Broker, principal: str) -> None:
    assert not await produces(client_options(kafka.as_principal(principal)), EVENTS)


async def test_each_principal_does_what_its_grants_say(kafka: Broker) -> None:
    def options(principal: str) -> dict[str, Any]:
        settings: KafkaSettings = kafka.as_principal(principal)
        return client_options(settings)

    assert await produces(options("svc-tasks"), EVENTS)
    assert await produces(options("svc-notifications"), ALERTS)
    assert not await produces(options("svc-tasks"), ALERTS), "only notifications writes the alerts"
    assert await produces(options("svc-audit"), AUDIT)
    assert not await produces(options("svc-notifications"), AUDIT), "only the audit service writes its records"
    assert await produces(options("dept-jilin"), COMMANDS), "a departmental system sends commands"
    assert await consumes(options("dept-jilin"), EVENTS), "JILIN may see every task"
    assert not await consumes(options("dept-mofcom"), EVENTS), "MOFCOM sees only its tasks, through the API"
    assert not await consumes(options("dept-jilin"), COMMANDS), "nobody's commands but the tasks service's to read"
    assert await consumes(options("svc-audit"), DEADLETTER)
    assert not await produces(options("operator"), COMMANDS), "the operator reads, never writes"
