"""``policytrack``: run the system and look into it."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console

from policytrack import supervisor
from shared.auth import mint_dev_token
from shared.contract.codes import Department, Role

app = typer.Typer(help="policytrack: tracking the China-South Korea (Changchun) Demonstration Zone plan.",
                  no_args_is_help=True)  # fmt: skip
console = Console(stderr=True)


@app.callback()
def main() -> None:
    """Run the system and look into it."""


@app.command()
def up() -> None:
    """Start the broker and the services, and keep them running until Ctrl-C (the data stays)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with supervisor.system({"POLICYTRACK_ENV": "dev"}) as running:
        console.print("[bold green]policytrack is up[/]")
        console.print("  Kafka            127.0.0.1:9092")
        for service in running:
            console.print(f"  {service.spec.name:<16} {service.spec.url}/docs   (log: {service.log})")
        console.print("Ctrl-C stops everything; the data stays for the next run.")
        try:
            stop.wait()
        except KeyboardInterrupt:
            console.print("stopping…")


@app.command()
def token(
    user: str = typer.Option(..., "--user", "-u", help="user id recorded as the actor of what they do"),
    department: Department = typer.Option(..., "--department", "-d", help="department code, e.g. JILIN"),
    role: list[Role] = typer.Option(..., "--role", "-r", help="role; repeat for several"),
    ttl: int = typer.Option(8 * 3600, help="seconds until it expires"),
) -> None:
    """Print a bearer token signed with the development key (services accept it only in dev)."""
    print(mint_dev_token(user, department, list(role), ttl_seconds=ttl))


if __name__ == "__main__":
    app()
