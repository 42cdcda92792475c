"""Who the caller is and what their department and roles let them read and write at all: the
rules every service's domain applies. Pure; tokens are verified in ``shared.auth``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.codes import Department, Role

READ_ALL_DEPARTMENTS = frozenset({Department.SC, Department.JILIN, Department.NDRC, Department.NAO})
READ_ALL_ROLES = frozenset({Role.SUPERVISOR, Role.APPROVER, Role.AUDITOR, Role.ADMIN})


class Actor(BaseModel):
    """The authenticated caller: whose name every event they cause carries."""

    model_config = ConfigDict(frozen=True)

    user: str = Field(min_length=1, max_length=200)
    department: Department
    roles: frozenset[Role]
    expires_at: datetime | None = None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


def can_read_everything(actor: Actor) -> bool:
    """Supervisors, approvers, auditors, admins and the implementing and approving
    governments see every task; other departments see the tasks they lead or support.
    Reading everything never means writing anything: each write has its own rule."""
    return actor.department in READ_ALL_DEPARTMENTS or actor.has(*READ_ALL_ROLES)


WRITING_ROLES = frozenset({Role.IMPLEMENTER, Role.SUPPORTER, Role.SUPERVISOR, Role.APPROVER, Role.ADMIN})


def can_write(actor: Actor) -> bool:
    """Whether the actor holds a role that writes at all: an auditor only reads. What each write
    needs beyond that (which department, which duty) is the service's rule."""
    return bool(actor.roles & WRITING_ROLES)


def can_read(actor: Actor, departments: Iterable[Department | None]) -> bool:
    """Whether the actor may see what concerns ``departments`` (a task's lead and supporting
    departments, an alert's recipients)."""
    return can_read_everything(actor) or actor.department in set(departments)
