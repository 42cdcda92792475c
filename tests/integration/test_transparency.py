"""The audit trail checked as a transparency log by tools we did not write: Go's
golang.org/x/mod/sumdb/note verifies the service's checkpoint, github.com/transparency-dev/merkle
its inclusion and consistency proofs (tests/transparency/main.go). A changed leaf, a truncated
store and a store rolled back to an older copy fail those checks, and the witness catches the
rollback. A forged checkpoint on the log stops nothing."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from policytrack import cli
from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.envelope import new_event
from shared.kafka.connection import client_options
from shared.settings import PROJECT_ROOT, KafkaSettings
from tests.conftest import JILIN, NAO, ServiceFactory, caught_up, eventually, plan_and_task

CHECKER = PROJECT_ROOT / "tests" / "transparency"


@pytest.fixture(scope="module")
def go_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/transparency built with the Go on the machine (modules from the Go module proxy)."""
    go = shutil.which("go")
    assert go, "Go is on the machine (the machine's doc); the independent checks need it"
    binary = tmp_path_factory.mktemp("go") / "witness-check"
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=CHECKER,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"},
    )
    assert built.returncode == 0, built.stderr
    return binary


def check(binary: Path, question: dict[str, Any]) -> dict[str, bool]:
    """What the Go implementations say of each check."""
    answer = subprocess.run([str(binary)], input=orjson.dumps(question), capture_output=True, timeout=60)
    lines = [orjson.loads(line) for line in answer.stdout.splitlines()]
    assert lines, answer.stderr
    return {line["check"]: line["ok"] for line in lines}


async def activity(tasks: ServiceProcess, reports: int) -> None:
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task = await plan_and_task(client)
        for percent in range(1, reports + 1):
            assert (
                await client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": percent})
            ).is_success


async def checkpoint_beyond(client: httpx.AsyncClient, size: int) -> tuple[str, int]:
    async def newer() -> tuple[str, int] | None:
        answer = await client.get("/v1/audit/checkpoint", headers=NAO)
        if answer.status_code != 200:
            return None
        signed = int(answer.text.split("\n")[1])
        return (answer.text, signed) if signed > size else None

    return await eventually(newer, timeout=60, what=f"a checkpoint beyond {size}")


async def test_standard_tools_check_the_trail_and_catch_a_changed_leaf_a_truncation_and_a_rollback(
    service_factory: ServiceFactory, go_checker: Path, tmp_path: Path
) -> None:
    tasks: ServiceProcess = service_factory("tasks").start()
    audit: ServiceProcess = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()
    database = Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit" / "audit.db"
    await activity(tasks, 5)
    await caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
        old_note, old = await checkpoint_beyond(client, 0)
        # A copy of the store as it stood then, for the rollback below.
        with closing(sqlite3.connect(database)) as live, closing(sqlite3.connect(tmp_path / "older.db")) as copy:
            live.backup(copy)
            copied = copy.execute("select max(seq) from audit_entries").fetchone()[0]
        await activity(tasks, 7)
        note, size = await checkpoint_beyond(client, copied)  # more than the copy holds: it cannot prove this
        verifier = (await client.get("/v1/audit/verifier-key", headers=NAO)).text.strip()

        async def inclusion(index: int) -> dict[str, Any]:
            leaf = (await client.get(f"/v1/audit/leaves/{index}", headers=NAO)).content
            proof = (
                await client.get("/v1/audit/proofs/inclusion", headers=NAO, params={"index": index, "size": size})
            ).json()
            return {"index": index, "size": size, "leaf": base64.b64encode(leaf).decode(), "hashes": proof["hashes"]}

        indices = sorted({0, 1, old - 1, size // 2, size - 1})
        consistency = (
            await client.get("/v1/audit/proofs/consistency", headers=NAO, params={"old": old, "new": size})
        ).json()
        question = {
            "verifier_key": verifier,
            "note": note,
            "inclusion": [await inclusion(index) for index in indices],
            "consistency": [{"old_note": old_note, "hashes": consistency["hashes"]}],
        }
        found = check(go_checker, question)
        assert all(found.values()) and len(found) == 3 + len(indices), found

        # Sizes and indexes outside the tree are problems naming the field.
        too_big = await client.get("/v1/audit/proofs/inclusion", headers=NAO, params={"index": 0, "size": 10**9})
        assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "size"
        outside = await client.get("/v1/audit/proofs/inclusion", headers=NAO, params={"index": size, "size": size})
        assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "index"

        # A changed leaf: the store edited under the service.
        changed = indices[2]
        with closing(sqlite3.connect(database)) as db, db:
            db.execute(
                "UPDATE audit_entries SET value = CAST('{\"percent\":99}' AS BLOB) WHERE seq = ?", (changed + 1,)
            )
        found = check(go_checker, {**question, "inclusion": [await inclusion(changed)], "consistency": []})
        assert found == {
            "verifier key": True,
            "checkpoint signature": True,
            f"inclusion of leaf {changed} in {size}": False,
        }

    # A witness has seen the newest checkpoint.
    state = tmp_path / "witness.json"
    at = ["--audit-url", audit.url, "--state", str(state)]
    witnessed = CliRunner().invoke(cli.app, ["witness", *at, "--verifier-key", verifier])
    assert witnessed.exit_code == 0, witnessed.output

    # The store rolled back to the older copy: it signs nothing over it, and serves the old tree.
    # What finds the rollback is a checkpoint on the log that covers more than the copy holds:
    # wait until one is published there. (Beyond the checkpoint seen before the copy is not
    # enough: the copy may hold entries after it, and a checkpoint that covers no more than the
    # copy agrees with it. Under load that is what the log sometimes held when the service stopped.)
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:

        async def published_beyond_the_copy() -> bool:
            listed = (await client.get("/v1/audit/checkpoints", headers=NAO)).json()["checkpoints"]
            return any(c["published"] and c["sequence"] > copied for c in listed)

        await eventually(published_beyond_the_copy, timeout=60, what="a checkpoint beyond the copy on the log")
    audit.stop()
    shutil.copy(tmp_path / "older.db", database)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    audit.start(wait=False)
    audit.wait_alive()
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
        rolled_back = await client.get("/v1/audit/checkpoint", headers=NAO)
        assert int(rolled_back.text.split("\n")[1]) == old

        async def refusing() -> dict[str, Any] | None:
            ready: dict[str, Any] = (await client.get("/readyz")).json()
            return ready if "rolled back or truncated" in str(ready["background"]["ingest"]) else None

        await eventually(refusing, what="the store refused as rolled back")
        gone = await client.get("/v1/audit/proofs/consistency", headers=NAO, params={"old": old, "new": size})
        assert gone.status_code == 422, "the rolled-back store cannot prove it extends what it signed"
    found = check(
        go_checker,
        {**question, "note": rolled_back.text, "inclusion": [], "consistency": [{"old_note": note, "hashes": []}]},
    )
    assert found[f"consistency of {size} with {old}"] is False
    witnessed = CliRunner().invoke(cli.app, ["witness", *at])
    assert witnessed.exit_code == 3 and "ROLLBACK" in witnessed.output

    # Truncated: the newest entries cut from the store (and their part of the tree).
    audit.stop()
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("DELETE FROM audit_entries WHERE seq > ?", (old - 2,))
    audit.start(wait=False)
    audit.wait_alive()
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
        leaf = await client.get(f"/v1/audit/leaves/{old - 1}", headers=NAO)
        assert leaf.status_code == 404, "a truncated store has no leaf to show"
        proof = await client.get("/v1/audit/proofs/inclusion", headers=NAO, params={"index": 0, "size": old})
        assert proof.status_code == 422, "nor a proof of the tree it signed"


async def test_a_forged_checkpoint_on_the_log_stops_nothing_and_is_named(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings
) -> None:
    audit: ServiceProcess = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()
    chain = audit.env["POLICYTRACK_AUDIT_CHAIN_ID"]
    await caught_up(audit)
    forged = c.TreeCheckpoint(
        chain=chain,
        size=10**9,
        root_hash=base64.b64encode(b"\x00" * 32).decode(),
        head_hash="ab" * 32,
        note=f"policytrack.local/{chain}\n{10**9}\n{'A' * 43}=\n\n\u2014 policytrack.local/{chain} AAAAAAAA\n",
        key_id="0" * 16,
        signed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    record = encode(new_event(forged, actor="policytrack-audit"))
    audit.stop()  # at its start it checks the checkpoints it has not ingested: the forgery among them
    producer = AIOKafkaProducer(**client_options(kafka_settings), acks="all")
    await producer.start()
    try:
        where = await producer.send_and_wait(record.topic, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()
    audit.start()
    ready = await caught_up(audit)
    assert ready["ready"] is True and ready["background"]["ingest"]["ok"], ready
    assert any(f"@{where.offset} is not evidence" in line for line in ready["untrusted_checkpoints"]), ready
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
        verified = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert verified["ok"] is True, verified["problems"]
    assert (where.topic, where.partition, where.offset) in {
        (f["topic"], f["partition"], f["offset"]) for f in verified["forgeries"]
    }
