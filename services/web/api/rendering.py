"""Pages rendered from the Jinja2 templates, with the headers every dashboard page carries:
a Content-Security-Policy that allows nothing but this origin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from services.web.adapters.sessions import Session
from shared.contract.codes import Role

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
NAVIGATION = (
    ("/", "Overview"),
    ("/responsibility", "Responsibility"),
    ("/alerts", "Alerts"),
    ("/trail", "Trail"),
    ("/report", "Report"),
)

templates = Environment(
    loader=PackageLoader("services.web"), autoescape=select_autoescape(default=True, default_for_string=True)
)
templates.filters["words"] = lambda name: str(name).replace("_", " ")
templates.filters["moment"] = lambda text: str(text or "")[:19].replace("T", " ")


def may_verify(session: Session) -> bool:
    """The "verify now" button is the auditors' (and admins')."""
    return session.actor.has(Role.AUDITOR, Role.ADMIN)


def page(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(
        request_path=request.url.path,
        navigation=NAVIGATION,
        session=session,
        actor=session.actor if session else None,
        may_verify=session is not None and may_verify(session),
        now=datetime.now(UTC),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
