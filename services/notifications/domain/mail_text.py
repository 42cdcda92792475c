"""What an alert says by mail: its subject and plain-text body in the reader's language, with
every moment in Beijing time (the deployment's zone). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contract import catalog as c
from shared.contract.catalog import short_type
from shared.i18n import N_, _, format_date, format_moment, names, parse, using

DIGEST_SECTIONS = {
    "late": N_("Late"),
    "due_soon": N_("Due within a week"),
    "awaiting_answer": N_("Awaiting your answer"),
}


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str
    language: str
    """The BCP 47 tag the text is in (``Content-Language``)."""


def mail_text(alert: c.Notice, language: str, subscription_id: str) -> MailText:
    """The message for one alert, in ``language`` (zh-CN, en or ko; zh-CN when unknown)."""
    locale = parse(language) or "zh_CN"
    with using(locale):
        subject, lines = _digest(alert) if isinstance(alert, c.DailyDigest) else _alert(alert)
        lines += [
            "",
            _("All times are Beijing time."),
            _(
                "You receive this mail through subscription %(subscription)s; whoever made it, "
                "its department or an administrator can remove it.",
                subscription=subscription_id,
            ),
        ]
        # A subject is one line, whatever line breaks a department typed into a title.
        one_line = " ".join(subject.split())
        return MailText(f"[policytrack] {one_line}", "\n".join(lines) + "\n", locale.replace("_", "-"))


def _alert(alert: c.DeadlineAlert | c.EvaluationFallingDue) -> tuple[str, list[str]]:
    kind = names.alert(short_type(alert.event_type))
    lines = [f"{kind}: {alert.title}", ""]
    if isinstance(alert, c.DeadlineAlert):
        lines.append(_("Task: %(task)s", task=alert.task_id))
        if alert.milestone_id:
            lines.append(_("Milestone: %(milestone)s", milestone=alert.milestone_id))
    else:
        lines.append(_("Plan: %(plan)s", plan=alert.plan_id))
    lines.append(_("Due: %(due)s (Beijing time)", due=format_moment(alert.due)))
    departments = "、".join(names.department(d) for d in alert.departments)
    if departments:
        lines.append(_("Departments: %(departments)s", departments=departments))
    if reason := getattr(alert, "reason", ""):
        lines.append(_("Reason: %(reason)s", reason=reason))
    return f"{kind}: {alert.title}", lines


def _digest(digest: c.DailyDigest) -> tuple[str, list[str]]:
    subject = _(
        "Daily digest for %(department)s, %(day)s",
        department=names.department(digest.department),
        day=format_date(digest.day),
    )
    lines = [subject]
    for kind, heading in DIGEST_SECTIONS.items():
        items = [item for item in digest.items if item.kind == kind]
        if not items:
            continue
        lines += ["", f"{_(heading)} ({len(items)})"]
        for item in items:
            named = item.milestone_id or item.request_id or item.task_id
            lines.append(f"- {item.title} ({named}): {format_moment(item.due)}")
    return subject, lines
