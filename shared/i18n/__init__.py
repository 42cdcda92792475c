"""The languages people read policytrack in: zh-CN first, then en and ko. Messages are Babel
gettext catalogs (``shared/i18n/locales``), English being the source; the language of the
moment is a context variable, set per request by the dashboard and per run by the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("zh_CN", "en", "ko")
"""The languages offered, the default first."""
DEFAULT_LOCALE = LOCALES[0]
TRANSLATED = ("zh_CN", "ko")
"""The languages with a catalog: English is the messages' own language."""
CATALOGS = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"

BEIJING = ZoneInfo("Asia/Shanghai")

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)
_zone: ContextVar[tzinfo] = ContextVar("zone", default=BEIJING)


def N_(message: str) -> str:
    """Marks a message for the catalog without translating it (it is translated where shown)."""
    return message


def NP_(context: str, message: str) -> str:
    """``N_`` for a message read in a context (``pgettext``): "late" as a state, or as a column."""
    return message


@cache
def translations(locale: str) -> NullTranslations:
    """The locale's catalog, compiled in memory from its .po file (no build step to forget)."""
    if locale not in TRANSLATED:
        return NullTranslations()
    with (CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def tag(locale: str) -> str:
    """The BCP 47 tag of a locale, for ``<html lang>`` and ``Content-Language``: zh-CN."""
    return locale.replace("_", "-")


def parse(text: str | None) -> str | None:
    """One of ``LOCALES`` from a tag or a locale name (zh-CN, zh_cn, zh, ko-KR, en-GB), or None."""
    if not text:
        return None
    wanted = text.strip().replace("-", "_").lower()
    for locale in LOCALES:
        if wanted == locale.lower():
            return locale
    language = wanted.split("_", 1)[0]
    return next((locale for locale in LOCALES if locale.split("_", 1)[0] == language), None)


def negotiate(accept_language: str | None) -> str:
    """The first language of an Accept-Language header that is offered, by its q-values."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        name, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            with contextlib.suppress(ValueError):
                quality = float(parameters.strip()[2:])
        if (locale := parse(name)) is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


@contextlib.contextmanager
def using(locale: str, zone: tzinfo | None = None) -> Iterator[str]:
    """Messages, names and dates in ``locale`` within the block; moments shown in ``zone``
    (the deployment's; Beijing time unless said)."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    zone_token = _zone.set(zone or BEIJING)
    try:
        yield _current.get()
    finally:
        _zone.reset(zone_token)
        _current.reset(token)


def choose(locale: str) -> None:
    """The language of the whole process from now on (the CLI's, chosen once at start)."""
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def current() -> str:
    return _current.get()


def gettext(message: str, **values: Any) -> str:
    """``message`` in the current language, with ``%(name)s`` placeholders filled from ``values``."""
    text = translations(_current.get()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **values}


def pgettext(context: str, message: str, **values: Any) -> str:
    text = str(translations(_current.get()).pgettext(context, message))
    return text % values if values else text


_ = gettext


def zone() -> tzinfo:
    return _zone.get()


def moment_of(value: date | datetime | str | None) -> date | datetime | None:
    """A date or a moment from what a service sent (ISO 8601 text); a moment without an offset
    is UTC, as the services write them."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def format_date(value: date | datetime | str | None) -> str:
    """A date as people write it: 2026年11月29日, November 29, 2026, 2026년 11월 29일. A moment is
    first put in the deployment's zone, so a due date near midnight keeps its day."""
    day = moment_of(value)
    if day is None:
        return ""
    if isinstance(day, datetime):
        day = day.astimezone(_zone.get()).date()
    return dates.format_date(day, format="long", locale=_current.get())


def format_moment(value: datetime | str | None) -> str:
    """A moment in the deployment's zone: its date as people write it, and the time to the minute."""
    moment = moment_of(value)
    if not isinstance(moment, datetime):
        return format_date(moment)
    local = moment.astimezone(_zone.get())
    return f"{format_date(local)} {local:%H:%M}"


def format_percent(value: float) -> str:
    return numbers.format_decimal(value, format="#,##0.#", locale=_current.get()) + "%"


def language_name(locale: str) -> str:
    """A language's name in itself: 简体中文, English, 한국어."""
    name = Locale.parse(locale).get_display_name(locale) or locale
    return "简体中文" if locale == "zh_CN" else name
