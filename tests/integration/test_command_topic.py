"""Departmental systems may send commands on policy.commands instead of HTTP, each signed by
the department's registered key; the events it causes keep that signature."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from joserfc import jws
from joserfc.jwk import OKPKey

from policytrack.processes import ServiceProcess
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import COMMANDS, DEADLETTER, EVENTS
from shared.kafka.connection import client_options
from shared.provenance.acts import COMMAND_TYPE, REGISTRY, SignedAct
from shared.provenance.keys import KeyFolder
from tests.conftest import (
    JILIN,
    Broker,
    ServiceFactory,
    department_system,
    end_offsets,
    eventually,
    plan_and_task,
    read_from,
)


async def test_signed_commands_yield_events_or_a_rejection_and_malformed_ones_are_dead_lettered(
    service_factory: ServiceFactory, kafka: Broker, tmp_path: Path, keys_dir: Path
) -> None:
    tasks: ServiceProcess = service_factory("tasks").start()
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        task = await plan_and_task(client, supporting_departments=["GACC"], due="2027-12-31T00:00:00Z")
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    most = department_system(kafka, keys_dir, "MOST", "u-most", "supporter")
    kafka_settings = kafka.settings
    event_starts = await end_offsets(kafka_settings, EVENTS)
    letter_starts = await end_offsets(kafka_settings, DEADLETTER)
    run = uuid.uuid4().hex[:8]
    accepted, forbidden, invalid, malformed, after, replayed = (f"{run}-{n}" for n in range(6))

    first = jilin.command("report_progress", {"task_id": task, "percent": 35}, correlation=accepted)
    await jilin.send(first)
    await most.send(most.command("report_progress", {"task_id": task, "percent": 40}, correlation=forbidden))
    await jilin.send(jilin.command("report_progress", {"task_id": task, "percent": 140}, correlation=invalid))
    key, _, headers = jilin.command("report_progress", {"task_id": task, "percent": 1}, correlation=malformed)
    await jilin.send((key, b"{not json", headers))
    await jilin.send(
        jilin.command(
            "schedule_milestone",
            {"task_id": task, "title": "Single window", "due": "2027-03-01T00:00:00+09:00"},
            correlation=after,
        )
    )
    # The very same signed record sent again: its Idempotency-Key is inside the signature.
    await jilin.send((first[0], first[1], [*first[2][:2], ("correlationid", replayed.encode())]))

    async def by_correlation() -> dict[str, list[CloudEvent[Any]]] | None:
        records = await read_from(kafka_settings, event_starts, until=lambda rs: False, timeout=0.5)
        found: dict[str, list[CloudEvent[Any]]] = {}
        for event in map(decode_record, records):
            if isinstance(event, CloudEvent) and event.correlationid:
                found.setdefault(event.correlationid, []).append(event)
        return found if {accepted, forbidden, invalid, after} <= set(found) else None

    events = await eventually(by_correlation, timeout=60, what="an answer to every well-formed command")
    done = events[accepted][0]
    assert done.type == "org.policytrack.task.progress_reported.v1", done.data
    assert (done.actor, done.actordept, done.data.percent) == ("u-jilin", "JILIN", 35)
    assert events[forbidden][0].type == "org.policytrack.command.rejected.v1"
    assert events[forbidden][0].data.status == 403 and "MOST" in events[forbidden][0].data.reason
    assert events[invalid][0].data.status == 422
    assert [e.field for e in events[invalid][0].data.errors] == ["percent"]
    assert events[after][0].type == "org.policytrack.milestone.scheduled.v1", "the loop went on after the poison"
    assert malformed not in events
    assert len(events[accepted]) == 1 and replayed not in events, "a replayed signed command appends nothing"

    act = SignedAct.decode(done.signedcommand or "")
    trust = KeyFolder(keys_dir).trust()
    assert act.refusal(trust, department="JILIN") is None, "JILIN's key signed exactly that command"
    assert orjson.loads(act.body) == {"task_id": task, "percent": 35}
    assert act.refusal(trust, department="MOST") is not None

    letters = await read_from(
        kafka_settings,
        letter_starts,
        timeout=30,
        until=lambda rs: any(dict(r.headers).get("correlationid") == malformed.encode() for r in rs),
    )
    letter = next(r for r in letters if dict(r.headers).get("correlationid") == malformed.encode())
    assert b"not JSON" in dict(letter.headers)["dlq_reason"]
    assert letter.value == b"{not json"


async def test_a_command_without_its_departments_signature_is_rejected_as_unauthenticated(
    service_factory: ServiceFactory, kafka: Broker, tmp_path: Path, keys_dir: Path
) -> None:
    tasks: ServiceProcess = service_factory("tasks").start()
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        task = await plan_and_task(client)
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    mofcom = department_system(kafka, keys_dir, "MOFCOM", "u-mofcom", "supporter")
    starts = await end_offsets(kafka.settings, EVENTS)
    run = uuid.uuid4().hex[:8]
    unsigned, impostor, tampered = (f"{run}-{n}" for n in range(3))
    body = orjson.dumps({"task_id": task, "percent": 50})
    producer = AIOKafkaProducer(**client_options(kafka.as_principal("dept-jilin")), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            COMMANDS,
            body,
            key=task.encode(),
            headers=[("command", b"report_progress"), ("correlationid", unsigned.encode())],
        )
    finally:
        await producer.stop()
    # MOFCOM's key signing a command that says JILIN's system sent it.
    claim = {"task_id": task, "percent": 60}
    protected = {
        "alg": "Ed25519",
        "kid": mofcom.key.key_id,
        "typ": COMMAND_TYPE,
        "cmd": "report_progress",
        "idk": f"idk-{run}",
        "sub": "u-jilin",
        "dept": "JILIN",
        "roles": ["implementer"],
    }
    private = OKPKey.import_key(mofcom.key.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    forged = jws.detach_content(jws.serialize_compact(protected, orjson.dumps(claim), private, registry=REGISTRY))
    await jilin.send(
        (
            task.encode(),
            orjson.dumps(claim),
            [("command", b"report_progress"), ("signature", forged.encode()), ("correlationid", impostor.encode())],
        )
    )
    key, _, headers = jilin.command("report_progress", {"task_id": task, "percent": 10}, correlation=tampered)
    await jilin.send((key, orjson.dumps({"task_id": task, "percent": 100}), headers))

    async def answers() -> dict[str, CloudEvent[Any]] | None:
        records = await read_from(kafka.settings, starts, until=lambda rs: False, timeout=0.5)
        found = {
            e.correlationid: e for e in map(decode_record, records) if isinstance(e, CloudEvent) and e.correlationid
        }
        return found if {unsigned, impostor, tampered} <= set(found) else None

    found = await eventually(answers, timeout=60, what="an answer to each")
    assert found[unsigned].data.status == 401 and "signed" in found[unsigned].data.reason
    assert found[impostor].data.status == 401, "a department's key speaks for that department only"
    assert "not a registered key of JILIN" in found[impostor].data.reason
    assert found[tampered].data.status == 401 and "signature" in found[tampered].data.reason
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        assert (await client.get(f"/v1/tasks/{task}", headers=JILIN)).json()["percent"] == 0
