"""A plan's tasks brought in from a checked sheet: each row is its own create command, sent with
the row's idempotency key, unless the plan already has a task of that title."""

from __future__ import annotations

from services.web.adapters.backends import BackendRefused, Backends
from services.web.application.reading import visible_tasks
from services.web.domain.task_sheet import Row
from shared.i18n import gettext as _


async def import_rows(backends: Backends, token: str, plan_id: str, rows: list[Row]) -> dict[int, str]:
    """What became of each row, by its number, in the signed-in person's language."""
    present = {task.title for task in await visible_tasks(backends, token) if task.plan_id == plan_id}
    outcomes: dict[int, str] = {}
    for row in rows:
        assert row.body is not None, "only a checked sheet is imported"
        if row.title in present:
            outcomes[row.number] = _("already in the plan")
            continue
        try:
            made = await backends.command("/v1/tasks", token, row.body, if_match=None, idempotency_key=row.key)
        except BackendRefused as refusal:
            outcomes[row.number] = _("refused: %(reason)s", reason=refusal.detail)
            continue
        present.add(row.title)
        outcomes[row.number] = _("created: %(task)s", task=made["id"])
    return outcomes
