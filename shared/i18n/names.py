"""The names people read for the codes of the contract: departments, fields of cooperation,
health, severities, ratings, roles, states and alert kinds, in the current language."""

from __future__ import annotations

from collections.abc import Mapping

from shared.i18n import N_, NP_, gettext, pgettext

DEPARTMENTS: Mapping[str, str] = {
    "SC": N_("State Council"),
    "JILIN": N_("Jilin Provincial People's Government"),
    "CHANGCHUN": N_("Changchun Municipal People's Government"),
    "NDRC": N_("National Development and Reform Commission"),
    "MOFCOM": N_("Ministry of Commerce"),
    "MOST": N_("Ministry of Science and Technology"),
    "MIIT": N_("Ministry of Industry and Information Technology"),
    "MEE": N_("Ministry of Ecology and Environment"),
    "MOFA": N_("Ministry of Foreign Affairs"),
    "MOF": N_("Ministry of Finance"),
    "GACC": N_("General Administration of Customs"),
    "NAO": N_("National Audit Office"),
}

FIELDS: Mapping[str, str] = {
    "industry": NP_("field", "Industry"),
    "science_technology": NP_("field", "Science and technology"),
    "trade": NP_("field", "Trade"),
    "humanities": NP_("field", "Humanities"),
    "environment": NP_("field", "Environmental protection"),
    "institutional_innovation": NP_("field", "Institutional innovation"),
    "business_environment": NP_("field", "Business environment"),
    "opening_up": NP_("field", "Opening up"),
}

# Words that mean different things in different places carry a context (pgettext).
STATES: Mapping[str, str] = {
    "on_track": NP_("state", "on track"),
    "at_risk": NP_("state", "at risk"),
    "late": NP_("state", "late"),
    "done": NP_("state", "done"),
    "open": NP_("state", "open"),
    "completed": NP_("state", "completed"),
    "cancelled": NP_("state", "cancelled"),
    "reported": NP_("state", "reported"),
    "escalated": NP_("state", "escalated"),
    "resolved": NP_("state", "resolved"),
    "requested": NP_("state", "requested"),
    "granted": NP_("state", "granted"),
    "rejected": NP_("state", "rejected"),
    "asked": NP_("state", "asked"),
    "acknowledged": NP_("state", "acknowledged"),
    "answered": NP_("state", "answered"),
    "declined": NP_("state", "declined"),
    "closed": NP_("state", "closed"),
    "met": NP_("state", "met"),
}

SEVERITIES: Mapping[str, str] = {
    "low": NP_("severity", "low"),
    "medium": NP_("severity", "medium"),
    "high": NP_("severity", "high"),
    "major": NP_("severity", "major"),
}

RATINGS: Mapping[str, str] = {
    "excellent": NP_("rating", "excellent"),
    "good": NP_("rating", "good"),
    "fair": NP_("rating", "fair"),
    "poor": NP_("rating", "poor"),
}

APPROVAL_KINDS: Mapping[str, str] = {
    "policy": NP_("approval", "policy"),
    "major_project": NP_("approval", "major project"),
}

ROLES: Mapping[str, str] = {
    "implementer": NP_("role", "implementer"),
    "supporter": NP_("role", "supporter"),
    "supervisor": NP_("role", "supervisor"),
    "approver": NP_("role", "approver"),
    "auditor": NP_("role", "auditor"),
    "admin": NP_("role", "administrator"),
}

ALERTS: Mapping[str, str] = {
    "alert.deadline_approaching": N_("deadline approaching"),
    "alert.deadline_due": N_("due today"),
    "alert.overdue": N_("overdue"),
    "alert.escalated": N_("overdue, referred to the NDRC"),
    "alert.at_risk": N_("task at risk"),
    "alert.support_unacknowledged": N_("support request not acknowledged"),
    "alert.support_overdue": N_("support request not answered in time"),
    "alert.evaluation_due": N_("evaluation due"),
    "alert.daily_digest": N_("daily digest"),
    "alert.delivered": N_("alert delivered"),
    "alert.delivery_failed": N_("alert not delivered"),
}

RESPONSIBILITY: Mapping[str, tuple[str, str]] = {
    "lead": (NP_("column", "lead"), N_("tasks it leads")),
    "supporting": (NP_("column", "supporting"), N_("tasks it supports")),
    "acts": (NP_("column", "acts"), N_("acts it recorded in the period")),
    "done": (NP_("column", "done"), N_("tasks it leads that are completed")),
    "late": (NP_("column", "late"), N_("tasks it leads that are past a due date")),
    "at_risk": (NP_("column", "at risk"), N_("tasks it leads that are at risk")),
    "escalated": (NP_("column", "escalated"), N_("issues of tasks it leads escalated to the State Council")),
    "support_received": (NP_("column", "support asked"), N_("support requests addressed to it")),
    "support_answered_in_time": (NP_("column", "answered in time"), N_("support it gave by the date asked")),
    "support_late": (NP_("column", "answered late"), N_("support it gave after the date asked")),
    "support_declined": (NP_("column", "declined"), N_("support requests it declined")),
    "support_unanswered": (
        NP_("column", "unanswered"),
        N_("asked of it, past the date asked, not answered"),
    ),
    "evaluations_overdue": (
        NP_("column", "evaluations overdue"),
        N_("plan evaluations due, not recorded (NDRC)"),
    ),
}


def department(code: object) -> str:
    """A department's name (国务院 for SC); an unknown code as it is."""
    name = DEPARTMENTS.get(str(code or ""))
    return gettext(name) if name else str(code or "")


def field(code: object) -> str:
    name = FIELDS.get(str(code or ""))
    return pgettext("field", name) if name else str(code or "").replace("_", " ")


def state(code: object) -> str:
    name = STATES.get(str(code or ""))
    return pgettext("state", name) if name else str(code or "").replace("_", " ")


def severity(code: object) -> str:
    name = SEVERITIES.get(str(code or ""))
    return pgettext("severity", name) if name else str(code or "")


def rating(code: object) -> str:
    name = RATINGS.get(str(code or ""))
    return pgettext("rating", name) if name else str(code or "")


def approval_kind(code: object) -> str:
    name = APPROVAL_KINDS.get(str(code or ""))
    return pgettext("approval", name) if name else str(code or "").replace("_", " ")


def role(code: object) -> str:
    name = ROLES.get(str(code or ""))
    return pgettext("role", name) if name else str(code or "")


def alert(kind: object) -> str:
    name = ALERTS.get(str(kind or ""))
    return gettext(name) if name else str(kind or "").removeprefix("alert.").replace("_", " ")


def column(code: str) -> str:
    name = RESPONSIBILITY.get(code)
    return pgettext("column", name[0]) if name else code.replace("_", " ")


def column_meaning(code: str) -> str:
    name = RESPONSIBILITY.get(code)
    return gettext(name[1]) if name else ""
