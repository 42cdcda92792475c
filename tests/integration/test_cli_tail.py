"""``policytrack tail`` on a real broker: it shows the events a filter asks for, as their
CloudEvents with --json, and never shows a record whose writer's proof fails (it names it)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from shared.contract import catalog as c
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import Broker
from tests.integration.test_provenance import forge, progress

TAIL = (sys.executable, "-m", "policytrack.cli", "tail")


async def test_tail_shows_the_task_s_events_and_never_a_forged_one(
    kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path, tasks_key: SigningKey
) -> None:
    task = f"task-tail-{uuid.uuid4().hex[:8]}"
    await forge(kafka_settings, progress(task, 66), proof=None)
    async with EventProducer(kafka_settings, client_id="test-tail", signing_key=tasks_key) as producer:
        for percent in (10, 20):
            data = c.TaskProgressReported(task_id=task, percent=percent, note="site works")
            await producer.publish(
                new_event(data, actor="u-jilin", actordept=Department.JILIN, aggregateversion=percent)
            )
    env = {**os.environ, **kafka.service_env(), "POLICYTRACK_KEYS_DIR": str(keys_dir)}
    shown = subprocess.run(
        [*TAIL, "--topic", "events", "--from-beginning", "--task", task, "--count", "2", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    events = [orjson.loads(line) for line in shown.stdout.splitlines()]  # --json: nothing else on stdout
    assert [(e["subject"], e["data"]["percent"]) for e in events] == [(task, 10), (task, 20)]
    assert "refused" in shown.stderr, "the forged record is named, apart from the output"
