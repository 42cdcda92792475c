"""Who may do what on the broker: one principal per service and per departmental system, each
granted only what it needs. The broker denies everything no ACL allows
(``allow.everyone.if.no.acl.found=false``); ``deploy/kafka.sh`` provisions what is written here.

``python -m shared.kafka.access passwords`` makes a password file for every principal that has
none (0600, in the credentials folder); ``spec`` prints the provisioning statements
``deploy/kafka/Provision.java`` applies; ``table`` prints the grants for people.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.contract.codes import Department
from shared.contract.topics import ALERTS, AUDIT, COMMANDS, DEADLETTER, EVENTS
from shared.settings import KafkaSettings

ADMIN = "admin"
"""The broker's own principal (super user): inter-broker traffic, topics, principals and ACLs."""

TASKS_PREFIX = "policytrack-tasks"
"""Transactional ids and consumer groups of the tasks service begin with this."""
NOTIFICATIONS_PREFIX = "policytrack-notifications"
READ_ALL_DEPARTMENTS = frozenset({Department.SC, Department.JILIN, Department.NDRC, Department.NAO})
"""Departments that may see every task (``shared.auth``), and so may read the topics whole."""


@dataclass(frozen=True)
class Grant:
    """Operations on one resource, or on every resource whose name starts with ``name``."""

    resource: str
    name: str
    operations: tuple[str, ...]
    prefixed: bool = False


@dataclass(frozen=True)
class Principal:
    name: str
    purpose: str
    grants: tuple[Grant, ...]


def _topic(name: str, *operations: str) -> Grant:
    return Grant("TOPIC", name, ("DESCRIBE", *operations))


def _reads(*topics: str) -> tuple[Grant, ...]:
    return tuple(_topic(topic, "READ") for topic in topics)


TASKS = Principal(
    "svc-tasks",
    "the tasks service: the only writer of policy.events; reads commands, forwards them, dead-letters",
    (
        _topic(EVENTS, "READ", "WRITE"),
        _topic(COMMANDS, "READ", "WRITE", "DELETE"),
        _topic(DEADLETTER, "WRITE"),
        Grant("GROUP", TASKS_PREFIX, ("READ", "DESCRIBE"), prefixed=True),
        Grant("TRANSACTIONAL_ID", TASKS_PREFIX, ("WRITE", "DESCRIBE"), prefixed=True),
    ),
)
NOTIFICATIONS = Principal(
    "svc-notifications",
    "the notifications service: the only writer of policy.alerts; reads the domain events",
    (
        _topic(EVENTS, "READ"),
        _topic(ALERTS, "READ", "WRITE"),
        _topic(DEADLETTER, "WRITE"),
        Grant("GROUP", NOTIFICATIONS_PREFIX, ("READ", "DESCRIBE"), prefixed=True),
    ),
)
AUDIT_SERVICE = Principal(
    "svc-audit",
    "the audit service: reads every audited topic; the only writer of policy.audit",
    (*_reads(EVENTS, ALERTS, DEADLETTER), _topic(AUDIT, "READ", "WRITE")),
)
OPERATOR = Principal(
    "operator",
    "people looking at the log by hand (policytrack tail, kcat): reads, never writes",
    (
        *_reads(COMMANDS, EVENTS, ALERTS, DEADLETTER, AUDIT),
        Grant("GROUP", "policytrack-operator", ("READ",), prefixed=True),
    ),
)


def department_principal(department: Department) -> Principal:
    """A departmental system writes commands; one that may see every task may also read the log."""
    name = f"dept-{department.value.lower()}"
    reads = _reads(EVENTS, ALERTS, AUDIT) if department in READ_ALL_DEPARTMENTS else ()
    return Principal(
        name,
        f"{department.value}'s departmental system: sends commands"
        + (", reads the log (it may see every task)" if reads else ""),
        (_topic(COMMANDS, "WRITE"), *reads, Grant("GROUP", name, ("READ",), prefixed=True)),
    )


PRINCIPALS: tuple[Principal, ...] = (
    TASKS,
    NOTIFICATIONS,
    AUDIT_SERVICE,
    OPERATOR,
    *(department_principal(department) for department in Department),
)


def _names(extra: tuple[str, ...] = ()) -> list[str]:
    return [ADMIN, *(principal.name for principal in PRINCIPALS), *extra]


def ensure_passwords(folder: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """Makes a random password for every principal without one, each file 0600 from its first
    byte (the folder 0700); returns the principals that got one."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = []
    for name in _names(extra):
        path = folder / name
        if path.exists():
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
        made.append(name)
    return made


def specification(folder: Path) -> list[str]:
    """What ``Provision.java`` applies: a SCRAM credential per principal, then every ACL."""
    lines = [f"user {name} {folder / name}" for name in _names()]
    for principal in PRINCIPALS:
        for grant in principal.grants:
            pattern = "PREFIXED" if grant.prefixed else "LITERAL"
            lines += [
                f"acl User:{principal.name} {grant.resource} {pattern} {grant.name} {operation}"
                for operation in grant.operations
            ]
    return lines


def table() -> list[str]:
    lines = []
    for principal in PRINCIPALS:
        lines.append(f"{principal.name}: {principal.purpose}")
        for grant in principal.grants:
            star = "*" if grant.prefixed else ""
            lines.append(f"    {grant.resource.lower()} {grant.name}{star}: {', '.join(grant.operations)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The broker's principals and their ACLs.")
    parser.add_argument("what", choices=["passwords", "spec", "table"])
    parser.add_argument("--credentials-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.credentials_dir or KafkaSettings().credentials_folder
    if args.what == "passwords":
        made = ensure_passwords(folder)
        if made:
            print(f"access: made passwords for {', '.join(made)} in {folder}", file=sys.stderr)
    elif args.what == "spec":
        print("\n".join(specification(folder)))
    else:
        print("\n".join(table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
