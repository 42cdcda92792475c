"""Creates the project's topics on the broker: ``python -m shared.kafka.topics``; with
``--describe``, prints each partition's leader and in-sync replicas.

Creating is idempotent: missing topics are made, existing ones get their configs brought
in line (partitions are only ever reported, since Kafka cannot shrink them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError

from shared.contract.topics import TOPICS, TopicSpec
from shared.kafka.connection import client_options
from shared.settings import KafkaSettings


def topic_configs(spec: TopicSpec, kafka: KafkaSettings) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "min.insync.replicas": str(kafka.min_insync_replicas),
        # A replica that missed acknowledged records must never lead: losing them is worse than waiting.
        "unclean.leader.election.enable": "false",
        **spec.configs,
    }


async def connect_admin(kafka: KafkaSettings, wait_seconds: float = 0) -> AIOKafkaAdminClient:
    """An admin client, retrying until the broker answers or ``wait_seconds`` have passed."""
    deadline = time.monotonic() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(**client_options(kafka))
        try:
            await admin.start()
            await admin.list_topics()
            return admin
        except KafkaError:
            await admin.close()
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.25)


async def ensure_topics(kafka: KafkaSettings, wait_seconds: float = 0) -> list[str]:
    """Create what is missing and align configs; returns lines describing what was done."""
    admin = await connect_admin(kafka, wait_seconds)
    report: list[str] = []
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in TOPICS if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        num_partitions=kafka.partitions,
                        replication_factor=kafka.replication_factor,
                        topic_configs=topic_configs(spec, kafka),
                    )
                    for spec in missing
                ]
            )
            report += [f"created {spec.name} ({kafka.partitions} partitions)" for spec in missing]
        present = [spec for spec in TOPICS if spec.name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, spec.name, topic_configs(spec, kafka)) for spec in present]
            )
            report += [f"checked {spec.name}" for spec in present]
    finally:
        await admin.close()
    return report


async def describe_topics(kafka: KafkaSettings) -> list[str]:
    """One line per partition of the project's topics: its leader, replicas and in-sync replicas."""
    admin = await connect_admin(kafka)
    try:
        described = await admin.describe_topics([spec.name for spec in TOPICS])
    finally:
        await admin.close()
    lines = []
    for topic in sorted(described, key=lambda t: str(t["topic"])):
        for partition in sorted(topic["partitions"], key=lambda p: int(p["partition"])):
            replicas = ",".join(map(str, partition["replicas"]))
            isr = ",".join(map(str, partition["isr"]))
            lines.append(
                f"{topic['topic']}/{partition['partition']}: leader {partition['leader']}, "
                f"replicas {replicas}, in sync {isr}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the policytrack topics (idempotent).")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the broker to answer")
    parser.add_argument("--describe", action="store_true", help="print partitions, leaders and ISR instead")
    args = parser.parse_args(argv)
    try:
        if args.describe:
            print("\n".join(asyncio.run(describe_topics(KafkaSettings()))))
            return 0
        for line in asyncio.run(ensure_topics(KafkaSettings(), args.wait)):
            print(f"topics: {line}", file=sys.stderr)
    except (KafkaConnectionError, KafkaError) as error:
        print(f"topics: could not reach the broker: {error!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
