"""Pages rendered from the Jinja2 templates in the reader's language (zh-CN first) and the
deployment's time zone, with the headers every dashboard page carries: a
Content-Security-Policy that allows nothing but this origin."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from services.web.adapters.sessions import Session
from services.web.domain.history import describe
from shared import i18n
from shared.contract.codes import Role
from shared.contract.reports import RESPONSIBILITY_COLUMNS, WORSE_WHEN_MORE
from shared.i18n import N_, names

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer the browser posts forms with "Origin: null".
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LANGUAGE_COOKIE = "policytrack_lang"
BETTER_WHEN_MORE = frozenset({"acts", "done", "support_answered_in_time"})
NAVIGATION = (
    ("/", N_("Overview")),
    ("/todo", N_("To do")),
    ("/plan", N_("Plan")),
    ("/responsibility", N_("Responsibility")),
    ("/alerts", N_("Alerts")),
    ("/reminders", N_("Reminders")),
    ("/trail", N_("Trail")),
    ("/report", N_("Report")),
)

templates = Environment(
    loader=PackageLoader("services.web"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
)
templates.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
)
templates.filters.update(
    department=names.department,
    field=names.field,
    state=names.state,
    severity=names.severity,
    rating=names.rating,
    approval_kind=names.approval_kind,
    role=names.role,
    alert=names.alert,
    day=i18n.format_date,
    moment=i18n.format_moment,
    percent=i18n.format_percent,
    describe=describe,
)


def locale_of(request: Request) -> str:
    """The language the reader chose (remembered in a cookie), else the browser's, else zh-CN."""
    return i18n.parse(request.cookies.get(LANGUAGE_COOKIE)) or i18n.negotiate(request.headers.get("accept-language"))


def zone_of(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.runtime.timezone)


def zone_name(zone: ZoneInfo) -> str:
    return i18n.gettext("Beijing time") if zone.key == "Asia/Shanghai" else zone.key


def may_verify(session: Session) -> bool:
    """The "verify now" button is the auditors' (and admins')."""
    return session.actor.has(Role.AUDITOR, Role.ADMIN)


def page(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    locale, zone = locale_of(request), zone_of(request)
    with i18n.using(locale, zone):
        html = templates.get_template(template).render(
            request_path=request.url.path,
            request_query=request.url.query,
            navigation=NAVIGATION,
            session=session,
            actor=session.actor if session else None,
            may_verify=session is not None and may_verify(session),
            now=request.app.state.runtime.clock(),
            lang=i18n.tag(locale),
            locale=locale,
            languages=[(other, i18n.language_name(other)) for other in i18n.LOCALES],
            zone_name=zone_name(zone),
            zone_key=zone.key,
            department_names=lambda: {code: names.department(code) for code in names.DEPARTMENTS},
            column_names={column: names.column(column) for column in RESPONSIBILITY_COLUMNS},
            column_meanings={column: names.column_meaning(column) for column in RESPONSIBILITY_COLUMNS},
            worse_when_more=WORSE_WHEN_MORE,
            better_when_more=BETTER_WHEN_MORE,
            **context,
        )
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, "Content-Language": i18n.tag(locale)})
