"""The audit service (and the tasks service's evidence check) as the CLI asks them over HTTP:
the verification with its progress, the export streamed line by line, the last checkpoint. A
refusal ends the command with exit code 2 and the service's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console

from policytrack.demo import token_for
from policytrack.progress import Meter

err = Console(stderr=True)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or token_for('nao')}"}


def evidence_checked(tasks_url: str, token: str | None) -> dict[str, Any]:
    with httpx.Client(base_url=tasks_url, headers=bearer(token), timeout=3600) as client:
        response = client.get("/v1/evidence/check")
    fail_unless_ok(response)
    checked: dict[str, Any] = response.json()
    return checked


def verified(audit_url: str, token: str | None, against_log: bool, *, quiet: bool) -> dict[str, Any]:
    """The verification's result, its progress shown as the audit service reports it."""
    params = {"against_log": str(against_log).lower(), "progress": "true"}
    with (
        httpx.Client(base_url=audit_url, headers=bearer(token), timeout=3600) as client,
        client.stream("GET", "/v1/audit/verify", params=params) as response,
        Meter("verifying the trail", err, quiet=quiet) as meter,
    ):
        fail_unless_ok(response)
        for line in lines_of(response):
            if not line:
                continue
            message = orjson.loads(line)
            if "result" in message:
                result: dict[str, Any] = message["result"]
                return result
            meter.update(message["checked"], message["of"])
    err.print("[red]the audit service ended the verification without a result[/]")
    raise typer.Exit(2)


def stream_export(client: httpx.Client, params: dict[str, Any], fmt: str, out: Any, quiet: bool) -> Any:
    """Streams /v1/audit/export, showing progress; to ``out`` (returns the count) or collected
    (returns the lines). The total is the trail's size, a bound when the export is filtered."""
    total = None
    ready = client.get("/readyz")
    if ready.status_code == 200:
        total = ready.json().get("entries")
    lines: list[bytes] = []
    count = 0
    with (
        Meter("exporting", err, total=total, quiet=quiet) as meter,
        client.stream("GET", "/v1/audit/export", params={**params, "format": fmt}) as response,
    ):
        fail_unless_ok(response)
        header = fmt == "csv"
        for line in lines_of(response):
            if header:
                header = False
                if out is not None:
                    out.write(line + b"\n")
                continue
            count += 1
            if out is not None:
                out.write(line + b"\n")
            else:
                lines.append(line)
            if count % 1000 == 0:
                meter.update(count)
        meter.update(count)
    return count if out is not None else lines


def lines_of(response: httpx.Response) -> Iterator[bytes]:
    """The lines of a streamed answer, ended by a newline only: a JSON string may hold U+2028 or
    U+0085 raw, where ``iter_lines`` (which splits as ``str.splitlines`` does) would cut it."""
    pending = b""
    for chunk in response.iter_bytes():
        *whole, pending = (pending + chunk).split(b"\n")
        yield from whole
    if pending:
        yield pending


def fail_unless_ok(response: httpx.Response) -> None:
    if response.status_code >= 400:
        if response.is_stream_consumed is False:
            response.read()
        err.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(2)


def last_checkpoint(client: httpx.Client, audit_url: str) -> dict[str, Any] | None:
    try:
        checkpoints = client.get(f"{audit_url}/v1/audit/checkpoints").json().get("checkpoints", [])
    except (httpx.HTTPError, ValueError):
        return None
    return checkpoints[-1] if checkpoints else None
