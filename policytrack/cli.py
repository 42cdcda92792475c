"""``policytrack``: run the system and look into it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from policytrack import following, history, supervisor, trail
from policytrack.demo import Demo
from policytrack.processes import ServiceProcess
from shared import i18n
from shared.auth import mint_dev_token
from shared.contract.codes import Department, Role
from shared.contract.topics import ALERTS, EVENTS
from shared.i18n import gettext as _
from shared.i18n import names
from shared.settings import KafkaSettings, RuntimeSettings

app = typer.Typer(
    help="policytrack: tracking the China-South Korea (Changchun) Demonstration Zone plan.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

TASKS_URL = typer.Option(os.environ.get("POLICYTRACK_TASKS_URL", "http://127.0.0.1:8001"), help="tasks service")
AUDIT_URL = typer.Option(os.environ.get("POLICYTRACK_AUDIT_URL", "http://127.0.0.1:8003"), help="audit service")
TOKEN = typer.Option(os.environ.get("POLICYTRACK_TOKEN"), help="bearer token (default: a development auditor's)")
JSON = typer.Option(False, "--json", help="machine-readable output")


def _time(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not an RFC 3339 time") from error
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs an offset, e.g. Z or +08:00")
    return moment.isoformat()


@app.callback()
def main(
    lang: str = typer.Option(
        "",
        "--lang",
        envvar="POLICYTRACK_LANG",
        help="zh-CN (the default), en or ko; else taken from LC_ALL, LC_MESSAGES or LANG",
    ),
) -> None:
    """Run the system and look into it."""
    i18n.choose(i18n.parse(lang) or _system_language())


def _system_language() -> str:
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if (found := i18n.parse(os.environ.get(variable, "").split(".", 1)[0])) is not None:
            return found
    return i18n.DEFAULT_LOCALE


DEMO_ENVIRONMENT = {
    "POLICYTRACK_ENV": "dev",
    # Health and evaluations are assessed every second, so that as the scenario's two years pass
    # on the development clock, tasks go at risk and evaluations fall due on the days they would.
    "POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "1",
}


@app.command()
def up(demo: bool = typer.Option(True, help="play the seed's scenario and keep a little activity going")) -> None:
    """Start the broker, the three services and the demo; a service that dies is started again;
    Ctrl-C stops everything (data stays)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    data = supervisor.data_dir(dict(os.environ))
    clock_file = data / "run" / "clock"
    environment = {**DEMO_ENVIRONMENT, "POLICYTRACK_CLOCK_FILE": str(clock_file)}
    try:
        with supervisor.system(environment, say=lambda line: err.print(f"[yellow]{line}[/]")) as running:
            urls = {service.name: service.url for service in running}
            if demo:
                player = history.tell(
                    urls["tasks"], data, clock_file, say=lambda line: err.print(f"[dim]demo[/] {line}")
                )
                player.submit_report(urls["audit"])
            _where_to_look(running)
            if demo:
                player.keep_going(stop.is_set)
            else:
                while not stop.wait(1):
                    pass
    except KeyboardInterrupt:
        err.print("stopped; the data stays in .data/ for the next run")


def _shown(name: str, value: object) -> str:
    """A state's value as a person reads it: names for codes, dates in the deployment's zone."""
    if name in ("lead_department",):
        return names.department(value)
    if name == "supporting_departments" and isinstance(value, list):
        return "、".join(names.department(code) for code in value)
    if name == "field":
        return names.field(value)
    if name in ("health", "status"):
        return names.state(value)
    if name in ("due", "created_at", "updated_at", "closed_at") and isinstance(value, str):
        return i18n.format_moment(value)
    return str(value)


def _where_to_look(running: list[ServiceProcess]) -> None:
    table = Table(title=_("policytrack is up"), show_header=True)
    table.add_column(_("what"))
    table.add_column(_("where"))
    dashboard = next(f"{s.url}/" for s in running if s.name == supervisor.DASHBOARD.name)
    table.add_row(_("dashboard"), f"[bold]{dashboard}[/]   " + _("(sign in as a department and role)"))
    kcat = KafkaSettings().credentials_folder / "kcat.conf"
    table.add_row("Kafka", f"127.0.0.1:9092, SASL/SCRAM  (kcat -F {kcat} -C -t policy.events -f '%h %s\\n')")
    for service in running:
        table.add_row(service.name, f"{service.url}/docs   " + _("log: %(path)s", path=service.log_path))
    table.add_row(_("a token"), "policytrack token --user u-1 --department JILIN --role implementer")
    table.add_row(_("follow alerts"), "policytrack tail --topic alerts   (curl -N .../v1/alerts/stream)")
    table.add_row(_("verify the trail"), "policytrack verify   ;   policytrack export --output trail.ndjson")
    table.add_row(_("status"), "policytrack status")
    console.print(table)
    err.print("[bold]" + _("The dashboard is at %(url)s", url=dashboard) + "[/]")
    err.print(_("Ctrl-C stops everything, the broker last."))


@app.command("demo")
def demo_command(
    tasks_url: str = TASKS_URL,
    keep_going: bool = typer.Option(False, help="then keep activity going"),
    as_json: bool = JSON,
) -> None:
    """Play the seed's scenario against a running tasks service (again is harmless)."""
    player = Demo(tasks_url, say=(lambda _line: None) if as_json else (err.print))
    ids = player.setup()
    if as_json:
        print(orjson.dumps(ids).decode())
    if keep_going:
        with contextlib.suppress(KeyboardInterrupt):
            player.keep_going(lambda: False)


@app.command()
def token(
    user: str = typer.Option(..., "--user", "-u", help="user id recorded as the actor of what they do"),
    department: Department = typer.Option(..., "--department", "-d", help="department code, e.g. JILIN"),
    role: list[Role] = typer.Option(..., "--role", "-r", help="role; repeat for several"),
    ttl: int = typer.Option(8 * 3600, help="seconds until it expires"),
) -> None:
    """Print a bearer token signed with the development key (services accept it only in dev)."""
    print(mint_dev_token(user, department, list(role), ttl_seconds=ttl))


@app.command()
def tail(
    topic: str = typer.Option("alerts", help="alerts or events"),
    event_type: str | None = typer.Option(None, "--type", help="e.g. alert.overdue"),
    task: str | None = typer.Option(None, help="only this task's records"),
    department: Department | None = typer.Option(None, help="only records naming this department"),
    from_beginning: bool = typer.Option(False, help="start at the beginning of the log"),
    count: int | None = typer.Option(None, help="stop after this many"),
    as_json: bool = JSON,
) -> None:
    """Follow alerts or events as they are appended, filtered (as the operator principal; a
    record whose writer's proof fails is never shown, only counted)."""
    name = {"alerts": ALERTS, "events": EVENTS}.get(topic)
    if name is None:
        raise typer.BadParameter("alerts or events", param_hint="--topic")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(following.follow(name, event_type, task, department, from_beginning, count, as_json))


@app.command()
def replay(
    task: str | None = typer.Argument(None, help="a task id: its state as of --as-of"),
    as_of: str | None = typer.Option(None, help="RFC 3339 moment (default: now)"),
    since: str | None = typer.Option(None, help="without a task: the log from this moment"),
    until: str | None = typer.Option(None, help="without a task: the log up to this moment"),
    audit_url: str = AUDIT_URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """A task's state as of a time, or the log between two times (from the audit trail)."""
    with httpx.Client(base_url=audit_url, headers=trail.bearer(token), timeout=300) as client:
        if task is not None:
            response = client.get(f"/v1/audit/tasks/{task}/state", params={"as_of": _time(as_of)} if as_of else {})
            trail.fail_unless_ok(response)
            state = response.json()
            if as_json:
                print(orjson.dumps(state).decode())
                return
            table = Table(title=_("task %(task)s as of %(moment)s", task=task, moment=as_of or _("now")))
            table.add_column(_("field"))
            table.add_column(_("value"))
            for name, value in state.items():
                if name != "milestones":
                    table.add_row(name, _shown(name, value))
            for m in state.get("milestones", []):
                met = names.state("met") + " " + i18n.format_moment(m["met_at"]) if m["met_at"] else names.state("open")
                table.add_row(
                    _("milestone %(id)s", id=m["milestone_id"]),
                    _("%(title)s, due %(due)s, %(state)s", title=m["title"], due=i18n.format_date(m["due"]), state=met),
                )
            console.print(table)
            return
        params = {k: v for k, v in {"since": _time(since), "until": _time(until)}.items() if v}
        lines = trail.stream_export(client, params, "ndjson", None, as_json)
        if not as_json:
            table = Table(
                title=_("the log from %(since)s until %(until)s", since=since or "-", until=until or _("now"))
            )
            for column in (_("entry"), _("time"), _("type"), _("subject"), _("actor")):
                table.add_column(column)
            for line in lines:
                event = orjson.loads(line)["event"] or {}
                table.add_row(
                    str(orjson.loads(line)["seq"]),
                    i18n.format_moment(event.get("time")),
                    event.get("type", _("(undecodable)")),
                    event.get("subject", ""),
                    event.get("actor", ""),
                )
            console.print(table)


@app.command()
def verify(
    audit_url: str = AUDIT_URL,
    token: str | None = TOKEN,
    against_log: bool = True,
    as_json: bool = JSON,
    evidence: bool = typer.Option(False, "--evidence", help="also hash every stored evidence file again"),
    tasks_url: str = TASKS_URL,
) -> None:
    """Verify the audit trail: chain, signed checkpoints, every entry against the log (and, with
    --evidence, every evidence file against its hash). Exit 0 only when intact."""
    started = time.monotonic()
    result = trail.verified(audit_url, token, against_log, quiet=as_json)
    if evidence:
        result["evidence"] = trail.evidence_checked(tasks_url, token)
        result["ok"] = result["ok"] and result["evidence"]["ok"]
    seconds = time.monotonic() - started
    if as_json:
        print(orjson.dumps({**result, "seconds": round(seconds, 3)}).decode())
    else:
        verdict = "[green]" + _("intact") + "[/]" if result["ok"] else "[red]" + _("NOT intact") + "[/]"
        table = Table(title=_("audit trail: %(verdict)s", verdict=verdict))
        table.add_column(_("check"))
        table.add_column(_("result"))
        table.add_row(
            _("entries (hash chain)"), f"{result['entries']:,} ({result['entries'] / max(seconds, 1e-9):,.0f}/s)"
        )
        table.add_row(_("signed checkpoints"), str(result["checkpoints"]))
        table.add_row(_("compared with the Kafka log"), _("yes") if result["against_log"] else _("no"))
        if result["divergence"]:
            table.add_row(_("first divergence"), orjson.dumps(result["divergence"]).decode())
        if evidence:
            changed = [m["sha256"] for m in result["evidence"]["mismatched"]]
            table.add_row(_("evidence files (hash)"), f"{result['evidence']['checked']:,}")
            if changed:
                table.add_row(_("changed evidence files"), ", ".join(changed))
        console.print(table)
    raise typer.Exit(0 if result["ok"] else 1)


keys_app = typer.Typer(help="Signing keys and the trust store (POLICYTRACK_KEYS_DIR).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("show")
def keys_show(as_json: bool = JSON) -> None:
    """Every trusted public key: whose it is and when it may sign."""
    from shared.provenance.keys import KeyFolder

    found = KeyFolder.of(RuntimeSettings()).trust().jwks()
    if as_json:
        print(orjson.dumps(found).decode())
        return
    table = Table(title=_("trusted keys"))
    for column in (_("owner"), _("key id"), _("from"), _("until")):
        table.add_column(column)
    for key in found["keys"]:
        since, until = key.get("nbf"), key.get("exp")
        table.add_row(
            key["owner"],
            key["kid"],
            datetime.fromtimestamp(since).isoformat() if since else "-",
            datetime.fromtimestamp(until).isoformat() if until else "-",
        )
    console.print(table)


@keys_app.command("init")
def keys_init(
    owner: str = typer.Argument(..., help="a service (tasks, notifications, audit) or a department code"),
) -> None:
    """Make the owner's signing key if it has none (0600) and trust its public key."""
    from shared.provenance.keys import KeyFolder

    key = KeyFolder.of(RuntimeSettings()).signing_key(owner, create=True)
    print(f"{owner}: key {key.key_id}")


@keys_app.command("rotate")
def keys_rotate(
    owner: str = typer.Argument(...),
    grace: float = typer.Option(600, help="seconds the old key may still sign (restart the owner meanwhile)"),
) -> None:
    """A new signing key for the owner; the old one retires after the grace."""
    from shared.provenance.keys import KeyFolder

    old, new = KeyFolder.of(RuntimeSettings()).rotate(owner, grace_seconds=grace)
    print(f"{owner}: {old} -> {new}; restart {owner}'s processes within {grace:g} s to sign with {new}")


@keys_app.command("retire")
def keys_retire(
    owner: str = typer.Argument(...),
    kid: str = typer.Argument(...),
    at: str | None = typer.Option(None, help="RFC 3339 time the key stops vouching (now by default)"),
) -> None:
    """Close a key's window: it vouches for nothing signed after (what it signed before stays verifiable)."""
    from shared.provenance.keys import KeyFolder

    moment = None if at is None else datetime.fromisoformat(_time(at) or "").timestamp()
    KeyFolder.of(RuntimeSettings()).retire(owner, kid, at=moment)
    print(f"{owner}: key {kid} retired")


@app.command()
def witness(
    state: Path = typer.Option(Path("witness-state.json"), help="where the last checkpoint seen is kept"),
    verifier_key: str | None = typer.Option(
        None, help="the note verifier key to pin on the first run (else fetched once, and pinned)"
    ),
    audit_url: str = AUDIT_URL,
    token: str | None = TOKEN,
) -> None:
    """Check that the audit trail's new checkpoint extends the last one seen (a witness's view).
    Exit 0 when it does, 3 on a rollback or a fork, 2 when it cannot be checked."""
    from policytrack.witness import BROKEN, CHECKED
    from policytrack.witness import witness as one_round

    with httpx.Client(base_url=audit_url, headers=trail.bearer(token), timeout=60) as client:
        outcome = one_round(client, state, verifier_key)
    (console if outcome.code == CHECKED else err).print(
        f"[{'green' if outcome.code == CHECKED else 'red'}]{outcome.message}[/]"
    )
    if outcome.code == BROKEN:
        err.print(f"[red]the last checkpoint seen is kept in {state}: keep it as evidence[/]")
    raise typer.Exit(outcome.code)


@app.command("verify-act")
def verify_act(
    event_id: str = typer.Argument(..., help="the id of an event on the trail"),
    keys: list[Path] = typer.Option(
        [], "--keys", help="JWKS files of the public keys to trust (the department's, the tasks service's)"
    ),
    audit_url: str = AUDIT_URL,
    tasks_url: str = TASKS_URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Who signed the command an event came from, with which key, and whether the event's
    writer's proof holds: checked here, with public keys, not by the services. Exit 0 only
    when both hold."""
    from policytrack.acts import check, trust_of

    with httpx.Client(base_url=audit_url, headers=trail.bearer(token), timeout=60) as client:
        answer = client.get(f"/v1/audit/acts/{event_id}")
        trail.fail_unless_ok(answer)
    if keys:
        key_sets = [orjson.loads(path.read_bytes()) for path in keys]
    else:
        err.print(f"[yellow]trusting the keys {tasks_url}/v1/keys publishes; pin them with --keys[/]")
        key_sets = [httpx.get(f"{tasks_url}/v1/keys", timeout=30).json()]
    findings = check(answer.json(), trust_of(key_sets))
    event = findings.event
    act = findings.act
    lines = {
        "event": f"{event['type']} {event['id']} by {event['actor']} ({event.get('actordept') or '-'})",
        "command signed by": "not signed by its department"
        if act is None
        else f"{findings.signer or 'an unknown key'} with key {act.kid} ({act.scheme})",
        "the command's signature": "-" if act is None else findings.command_refusal or "holds",
        "writer's proof": "holds" if findings.writer.ok else f"fails: {findings.writer.refusal}",
        "written by": f"{findings.writer.writer} with key {findings.writer.kid}" if findings.writer.ok else "-",
    }
    if as_json:
        print(orjson.dumps({**lines, "proven": findings.proven}).decode())
    else:
        verdict = "[green]" + _("proven") + "[/]" if findings.proven else "[red]" + _("NOT proven") + "[/]"
        table = Table(title=_("act: %(verdict)s", verdict=verdict))
        table.add_column(_("check"))
        table.add_column(_("result"))
        for name, value in lines.items():
            table.add_row(name, value)
        console.print(table)
    raise typer.Exit(0 if findings.proven else 1)


@app.command()
def export(
    output: Path = typer.Option(..., "--output", "-o", help="file to write"),
    fmt: str = typer.Option("ndjson", "--format", help="ndjson or csv"),
    audit_url: str = AUDIT_URL,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Export the whole audit trail to a file, streamed."""
    if fmt not in ("ndjson", "csv"):
        raise typer.BadParameter("ndjson or csv", param_hint="--format")
    with (
        httpx.Client(base_url=audit_url, headers=trail.bearer(token), timeout=3600) as client,
        output.open("wb") as out,
    ):
        started = time.monotonic()
        written = trail.stream_export(client, {}, fmt, out, as_json)
    summary = {
        "output": str(output),
        "format": fmt,
        "records": written,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(orjson.dumps(summary).decode()) if as_json else err.print(
        f"wrote {written:,} records to {output} in {summary['seconds']}s"
    )


@app.command()
def status(token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Each service's readiness, restarts and lag, the trail's entries and last signed checkpoint."""
    supervised = {}
    if supervisor.status_file().exists():
        supervised = {s["name"]: s for s in orjson.loads(supervisor.status_file().read_bytes())["services"]}
    # Where ``make run`` put each service (its status file says), else where it puts them by default.
    urls = {spec.name: supervised.get(spec.name, {}).get("url", spec.url) for spec in supervisor.SERVICES}
    rows = []
    with httpx.Client(timeout=5, headers=trail.bearer(token)) as client:
        for spec in supervisor.SERVICES:
            row: dict[str, Any] = {
                "service": spec.name,
                "url": urls[spec.name],
                **{k: supervised.get(spec.name, {}).get(k) for k in ("pid", "restarts", "last_exit")},
            }
            try:
                ready = client.get(f"{urls[spec.name]}/readyz")
                row.update(ready=ready.status_code == 200, details=ready.json())
            except httpx.HTTPError as error:
                row.update(ready=False, details={"error": type(error).__name__})
            rows.append(row)
        checkpoint = trail.last_checkpoint(client, urls[supervisor.AUDIT.name])
    dashboard = f"{urls[supervisor.DASHBOARD.name]}/"
    if as_json:
        print(orjson.dumps({"services": rows, "last_checkpoint": checkpoint, "dashboard": dashboard}).decode())
        return
    table = Table(title=_("policytrack status"))
    for column in (_("service"), "URL", _("ready"), _("restarts"), _("lag"), _("entries")):
        table.add_column(column)
    for row in rows:
        details = row["details"]
        table.add_row(
            row["service"],
            row["url"],
            "[green]" + _("yes") + "[/]" if row["ready"] else "[red]" + _("no") + "[/]",
            str(row["restarts"] or 0),
            str(details.get("lag", "")),
            str(details.get("entries", "")),
        )
    console.print(table)
    console.print(_("dashboard: %(url)s", url=dashboard))
    if checkpoint:
        console.print(
            _(
                "last signed checkpoint: entry %(sequence)s at %(moment)s (key %(key)s)",
                sequence=f"{checkpoint['sequence']:,}",
                moment=i18n.format_moment(checkpoint["signed_at"]),
                key=checkpoint["key_id"],
            )
        )


def run() -> None:
    """The console script: the app, with a plain word instead of a traceback when a service is down."""
    try:
        app()
    except httpx.TransportError as error:
        err.print(
            f"[red]cannot reach {error.request.url.host}:{error.request.url.port}[/] ({error}); "
            "is the system running (make run)?"
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
