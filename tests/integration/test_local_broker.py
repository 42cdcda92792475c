"""The project's broker script and what people see on the topics with kcat."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.contract.catalog import TaskAssigned
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.contract.topics import TOPICS
from shared.kafka.connection import client_options
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import KAFKA_SCRIPT, Broker


def test_starting_a_running_broker_is_harmless(kafka: Broker) -> None:
    pid_file = (
        Path(kafka.env.get("POLICYTRACK_KAFKA_DATA_DIR", KAFKA_SCRIPT.parent.parent / ".data/kafka")) / "kafka.pid"
    )
    pid_before = pid_file.read_text()
    again = kafka.script("start")
    assert "already running" in again.stderr
    assert pid_file.read_text() == pid_before
    assert kafka.script("status").returncode == 0


def test_a_missing_java_gives_one_line_that_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "cat", "mvn"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(KAFKA_SCRIPT), "start"],
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root"), "POLICYTRACK_KAFKA_PORT": "19192"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "java not found" in lines[0] and "install" in lines[0]


async def test_topics_exist_with_their_configs(kafka_settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**client_options(kafka_settings))
    await admin.start()
    try:
        assert {spec.name for spec in TOPICS} <= set(await admin.list_topics())
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in TOPICS]
        )
        configs = {
            resource[3]: {entry[0]: entry[1] for entry in resource[4]}
            for response in described
            for resource in response.resources
        }
    finally:
        await admin.close()
    assert configs["policy.events"]["retention.ms"] == "-1"
    assert configs["policy.alerts"]["retention.ms"] == "-1"
    assert configs["policy.deadletter"]["retention.ms"] == "-1"
    assert configs["policy.events"]["min.insync.replicas"] == str(kafka_settings.min_insync_replicas)


async def test_kcat_shows_the_cloudevents_headers(
    kafka: Broker, kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    event = new_event(
        TaskAssigned(task_id="t-kcat", lead_department=Department.JILIN, supporting_departments=(Department.MOST,)),
        actor="u-1",
        actordept=Department.JILIN,
    )
    async with EventProducer(kafka_settings, client_id="test-kcat", signing_key=tasks_key) as producer:
        meta = await producer.publish(event)
    shown = kafka.kcat(
        "-C",
        "-t",
        "policy.events",
        "-p",
        str(meta.partition),
        "-o",
        str(meta.offset),
        "-c",
        "1",
        "-e",
        "-f",
        "%h %s\\n",
    ).decode()
    assert f"ce_id={event.id}" in shown
    assert "ce_type=org.policytrack.task.assigned.v1" in shown
    assert "ce_specversion=1.0" in shown
    assert "ce_actordept=JILIN" in shown
    assert '"lead_department":"JILIN"' in shown
