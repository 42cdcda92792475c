"""The NDRC's implementation report as a formal document in Chinese (PDF): issuing body,
title, recipient, numbered sections, date and page numbers, with the SHA-256 of the report's
JSON printed on it. Rendered from the same JSON as the Markdown, so the numbers are the same."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader

from shared import i18n
from shared.contract.reports import RESPONSIBILITY_COLUMNS
from shared.i18n import names

ISSUER = "国家发展和改革委员会"
RECIPIENT = "国务院"
TITLE = "关于总体方案实施情况的报告"
BEIJING = ZoneInfo("Asia/Shanghai")

_TEMPLATES = Environment(loader=PackageLoader("services.audit"), autoescape=True)


class PdfUnavailable(Exception):
    """WeasyPrint cannot lay out documents here: its system libraries (Pango) are missing."""


def document_html(report: dict[str, Any], digest: str) -> str:
    """The document as HTML, in Chinese, dates in Beijing time; everything a caller wrote escaped."""
    with i18n.using("zh_CN", BEIJING):
        period_from, period_to = (i18n.format_date(report["period"][end]) for end in ("from", "to"))
        return _TEMPLATES.get_template("implementation.html.j2").render(
            report=report,
            digest=digest,
            issuer=ISSUER,
            recipient=RECIPIENT,
            title=TITLE,
            period_from=period_from,
            period_to=period_to,
            columns=RESPONSIBILITY_COLUMNS,
            day=i18n.format_date,
            field=names.field,
            department=names.department,
            state=names.state,
            rating=names.rating,
            column_name=names.column,
        )


def pdf(report: dict[str, Any], digest: str) -> bytes:
    """The document as PDF (CPU-bound: run it off the event loop)."""
    try:
        from weasyprint import HTML  # imported here: the service starts without Pango, only PDFs need it
    except OSError as error:
        raise PdfUnavailable(f"PDF rendering needs Pango and the CJK fonts (make tools): {error}") from error
    rendered: bytes = HTML(string=document_html(report, digest)).write_pdf()
    return rendered
