"""Every message the code and the templates show has its zh-CN and ko translation, with the same
placeholders; a message added without one fails here (issue 29: Chinese first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from shared import i18n
from shared.i18n import names
from shared.settings import PROJECT_ROOT

KEYWORDS = {**DEFAULT_KEYWORDS, "NP_": ((1, "c"), 2)}


def shown_messages() -> set[tuple[str | None, str]]:
    """Every message the sources mark, extracted afresh as ``make messages`` does."""
    with (PROJECT_ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]  # Babel is untyped
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        PROJECT_ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


@pytest.fixture(scope="module")
def messages() -> set[tuple[str | None, str]]:
    found = shown_messages()
    assert len(found) > 250, "the extraction found the sources"
    return found


@pytest.mark.parametrize("locale", i18n.TRANSLATED)
def test_every_message_shown_has_a_translation(messages: set[tuple[str | None, str]], locale: str) -> None:
    with (i18n.CATALOGS / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    translated = {(m.context, m.id): m for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(messages - translated.keys(), key=str)
    assert not missing, f"{len(missing)} messages have no {locale} translation, e.g. {missing[:5]}"
    problems = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert not problems, f"placeholders that differ from the English: {problems[:5]}"


def test_chinese_is_the_default_and_dates_are_written_as_people_write_them() -> None:
    assert i18n.negotiate(None) == "zh_CN"
    assert i18n.negotiate("en-US,en;q=0.9") == "en"
    assert i18n.negotiate("ko-KR,ko;q=0.9,en;q=0.5") == "ko"
    due = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # midnight, 29 November, in Beijing
    with i18n.using("zh_CN"):
        assert i18n.format_date(due) == "2026年11月29日"
        assert names.department("MOFCOM") == "商务部"
        assert names.field("opening_up") == "对外开放"
    with i18n.using("ko"):
        assert i18n.format_date(due) == "2026년 11월 29일"
        assert names.department("SC") == "국무원"
    with i18n.using("en"):
        assert i18n.format_date(due) == "November 29, 2026"
        assert names.department("MOFCOM") == "Ministry of Commerce"


def test_a_state_and_a_column_of_the_same_english_word_are_translated_apart() -> None:
    with i18n.using("zh_CN"):
        assert names.state("late") == "逾期"
        assert names.column("support_late") == "逾期答复"
