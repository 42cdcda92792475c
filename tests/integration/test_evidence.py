"""Evidence against the real broker (issue 30, item 1): a PDF uploaded and named when a
milestone is met travels on the trail with its hash; whoever may read the task downloads it,
checked against that hash; nobody else finds it; a changed byte is reported and not served."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from tests.conftest import JILIN, MIIT, NAO, SC, ServiceFactory

CLI = (sys.executable, "-m", "policytrack.cli")
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"%" * 50_000 + b"\n%%EOF\n"


def a_task_with_a_milestone(tasks: httpx.Client) -> tuple[str, str]:
    plan = tasks.post("/v1/plans", headers=SC, json={"title": "Overall Plan"}).json()["id"]
    task = tasks.post(
        "/v1/tasks",
        headers=JILIN,
        json={
            "plan_id": plan,
            "title": "Bonded zone",
            "field": "trade",
            "lead_department": "JILIN",
            "due": "2030-01-01T00:00:00Z",
        },
    ).json()["id"]
    milestone = tasks.post(
        f"/v1/tasks/{task}/milestones",
        headers=JILIN,
        json={"title": "Customs clearance", "due": "2029-01-01T00:00:00Z"},
    ).json()["id"]
    return task, milestone


def test_a_milestone_met_with_a_pdf_that_only_its_readers_download_while_it_is_unchanged(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "evidence"
    service: ServiceProcess = service_factory("tasks", POLICYTRACK_TASKS_EVIDENCE_PATH=str(folder)).start()
    with httpx.Client(base_url=service.url, timeout=30) as tasks:
        task, milestone = a_task_with_a_milestone(tasks)
        uploaded = tasks.post(
            "/v1/evidence",
            params={"name": "海关验收报告.pdf"},
            content=PDF,
            headers={**JILIN, "Content-Type": "application/pdf"},
        )
        assert uploaded.status_code == 201, uploaded.text
        evidence = uploaded.json()
        assert evidence == {
            "name": "海关验收报告.pdf",
            "media_type": "application/pdf",
            "size": len(PDF),
            "sha256": hashlib.sha256(PDF).hexdigest(),
        }
        unknown = {**evidence, "sha256": "0" * 64}
        refused = tasks.post(
            f"/v1/tasks/{task}/milestones/{milestone}/met", headers=JILIN, json={"evidence": [unknown]}
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "evidence", refused.text

        met = tasks.post(f"/v1/tasks/{task}/milestones/{milestone}/met", headers=JILIN, json={"evidence": [evidence]})
        assert met.status_code == 200, met.text
        history = tasks.get(f"/v1/tasks/{task}/events", headers=JILIN).json()
        on_the_trail = [e for e in history if e["type"] == c.MilestoneMet.event_type]
        assert on_the_trail[0]["data"]["evidence"] == [evidence]

        url = f"/v1/tasks/{task}/evidence/{evidence['sha256']}"
        for reader in (JILIN, NAO):
            download = tasks.get(url, headers=reader)
            assert download.status_code == 200 and download.content == PDF
            assert download.headers["content-type"] == "application/pdf"
            assert "attachment" in download.headers["content-disposition"]
        assert tasks.get(url, headers=MIIT).status_code == 404, "a department not on the task does not find it"

        stored = folder / evidence["sha256"][:2] / evidence["sha256"]
        changed = bytearray(stored.read_bytes())
        changed[100] ^= 0x20
        stored.write_bytes(bytes(changed))
        assert tasks.get(url, headers=JILIN).status_code == 409, "a changed file is not served"
        check = tasks.get("/v1/evidence/check", headers=NAO).json()
        assert check["ok"] is False and check["mismatched"] == [
            {"sha256": evidence["sha256"], "found": hashlib.sha256(bytes(changed)).hexdigest()}
        ]

    audit = service_factory("audit").start()
    verified = subprocess.run(
        [
            *CLI,
            "verify",
            "--evidence",
            "--json",
            "--no-against-log",
            "--audit-url",
            audit.url,
            "--tasks-url",
            service.url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verified.returncode == 1, verified.stderr
    result = orjson.loads(verified.stdout)
    assert result["ok"] is False and [m["sha256"] for m in result["evidence"]["mismatched"]] == [evidence["sha256"]]


def test_an_upload_is_refused_over_its_bound_or_when_it_is_not_what_it_claims(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    service = service_factory("tasks", POLICYTRACK_TASKS_EVIDENCE_MAX_BYTES="1000").start()
    with httpx.Client(base_url=service.url, timeout=30) as tasks:
        upload: dict[str, Any] = {"url": "/v1/evidence", "params": {"name": "scan.pdf"}}
        too_large = tasks.post(
            **upload, content=b"%PDF-" + b"0" * 5000, headers={**JILIN, "Content-Type": "application/pdf"}
        )
        chunked = tasks.post(
            **upload,
            content=iter([b"%PDF-", b"0" * 5000]),
            headers={**JILIN, "Content-Type": "application/pdf"},
        )
        disguised = tasks.post(
            **upload, content=b"<script>alert(1)</script>", headers={**JILIN, "Content-Type": "application/pdf"}
        )
        reader_only = tasks.post(**upload, content=b"%PDF-1.7", headers={**NAO, "Content-Type": "application/pdf"})
    assert too_large.status_code == 413 and chunked.status_code == 413, (too_large.text, chunked.text)
    assert disguised.status_code == 415 and disguised.headers["content-type"] == "application/problem+json"
    assert reader_only.status_code == 403


async def test_evidence_kept_in_postgresql_is_served_by_another_instance_and_a_changed_byte_is_reported(
    service_factory: ServiceFactory, postgres_dsn: str
) -> None:
    import asyncpg

    large = b"%PDF-1.7\n" + bytes(range(256)) * 10_000 + b"\n%%EOF\n"  # three chunks in the database
    sha256 = hashlib.sha256(large).hexdigest()
    first = service_factory("tasks", POLICYTRACK_TASKS_EVIDENCE_DSN=postgres_dsn).start()
    task, milestone = await asyncio.to_thread(lambda: a_task_with_a_milestone(httpx.Client(base_url=first.url)))
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as tasks:
        uploaded = await tasks.post(
            "/v1/evidence",
            params={"name": "scan.pdf"},
            content=large,
            headers={**JILIN, "Content-Type": "application/pdf"},
        )
        assert uploaded.status_code == 201 and uploaded.json()["sha256"] == sha256, uploaded.text
        met = await tasks.post(
            f"/v1/tasks/{task}/milestones/{milestone}/met", headers=JILIN, json={"evidence": [uploaded.json()]}
        )
        assert met.status_code == 200, met.text
    first.stop()

    # Another instance, with a data folder of its own, serves it from the database.
    second = service_factory("tasks", POLICYTRACK_TASKS_EVIDENCE_DSN=postgres_dsn).start()
    url = f"/v1/tasks/{task}/evidence/{sha256}"
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as tasks:
        served = await tasks.get(url, headers=JILIN)
        assert served.status_code == 200 and served.content == large
        database = await asyncpg.connect(postgres_dsn.replace("+asyncpg", ""))
        try:
            chunks = await database.fetchval("select count(*) from evidence_chunks where sha256 = $1", sha256)
            assert chunks == 3
            await database.execute(
                "update evidence_chunks set data = overlay(data placing '\\x00'::bytea from 100) "
                "where sha256 = $1 and seq = 1",
                sha256,
            )
        finally:
            await database.close()
        assert (await tasks.get(url, headers=JILIN)).status_code == 409, "a changed byte is not served"
        check = (await tasks.get("/v1/evidence/check", headers=NAO)).json()
        assert check["ok"] is False and [m["sha256"] for m in check["mismatched"]] == [sha256]
