"""The implementation report as a formal document in Chinese (issue 30, item 5): issuing body,
title, recipient, numbered sections and the report's hash, from the same JSON as the Markdown;
what departments wrote is text in it, never markup."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

from services.audit.adapters.documents import document_html, pdf
from services.audit.domain.implementation import implementation_report
from tests.unit.test_implementation_report import hostile_world, replay_of

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 30, 16, 30, tzinfo=UTC)
DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_the_document_is_laid_out_as_a_formal_report_and_escapes_what_was_written() -> None:
    report = implementation_report(replay_of(hostile_world()), START, END)
    html = document_html(report, DIGEST)
    assert '<p class="issuer">国家发展和改革委员会</p>' in html and "<h1>关于总体方案实施情况的报告</h1>" in html
    assert "国务院：" in html and "2026年1月1日至2026年7月1日" in html, "the period's end in Beijing time"
    headings = re.findall(r"<h2>(.)、", html)
    assert headings == ["一", "二", "三", "四", "五", "六"]
    assert "<script>" not in html and "&lt;script&gt;" in html, "a title someone wrote is text"
    assert "Zone | bonded" in html
    assert f'<code id="digest">{DIGEST}</code>' in html


def test_the_pdf_holds_the_chinese_text_and_the_hash() -> None:
    report = implementation_report(replay_of(hostile_world()), START, END)
    document = pdf(report, DIGEST)
    assert document.startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", "-", "-"], input=document, capture_output=True, check=True).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    assert "关于总体方案实施情况的报告" in flat and "国家发展和改革委员会" in flat
    assert DIGEST in flat and "吉林省人民政府" in flat
