"""Acting from the dashboard: the forms the tasks service says a person may use, posted back
here and sent on as the person's own command (their token, the form's If-Match version and its
Idempotency-Key). A refusal comes back beside the fields; a form filled against an older version
shows what changed meanwhile and can be sent again."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from services.web.adapters.backends import BackendRefused
from services.web.adapters.sessions import Session
from services.web.bootstrap import WebRuntime
from services.web.domain.forms import COMMAND_PATH, FORMS, Form, FormProblem, body_of
from services.web.entrypoints.rendering import zone_of
from services.web.entrypoints.session import checked, local_path, same_origin
from shared.http.problems import Problem
from shared.i18n import gettext

MAX_FILES = 10
MAX_FORM_BYTES = MAX_FILES * 20 * 1024 * 1024 + 256 * 1024
"""A form with its files: the tasks service bounds each file again as it takes it."""
UPLOAD_CHUNK = 256 * 1024
FORMS_WITH_FILES = re.compile(r"/(tasks/[^/]{1,128}/act|plan/act|plan/import)")
"""Where forms post, files and all: the edge's small bound on bodies does not apply there."""


@dataclass(frozen=True)
class Filled:
    """A form as it was posted and what came of it, to show it again."""

    command: str
    path: str
    key: str
    values: dict[str, list[str]]
    errors: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    filled_against: int | None = None
    """Set when the form was refused as filled against an older version: that version."""

    @property
    def stale(self) -> bool:
        return self.filled_against is not None


def fresh_key() -> str:
    """Each form shown gets its own key: a double click sends the same one, a new form another."""
    return f"web-{uuid.uuid4()}"


async def act(request: Request, web: WebRuntime, session: Session) -> Filled | Response:
    """Sends the posted form's command; the redirect back on success, else the form to show again."""
    same_origin(request)
    posted = await bounded_form(request, max_files=MAX_FILES, max_fields=200)
    checked(session, str(posted.get("csrf", "")))
    command, path, key = (str(posted.get(name, "")) for name in ("command", "path", "key"))
    form = FORMS.get(command)
    if form is None or not COMMAND_PATH.fullmatch(path):
        return Filled(command, path, key, {}, detail=gettext("This form cannot be sent."))
    values = _values(posted)
    try:
        body = {**_given(posted), **body_of(form, values, zone_of(request))}
    except FormProblem as problem:
        return Filled(command, path, key, values, {problem.field: gettext(problem.message)})
    try:
        evidence = [await _uploaded(web, session, file) for file in _files(posted)]
    except BackendRefused as refusal:
        if refusal.status not in (403, 413, 415, 422):
            raise
        return replace(Filled(command, path, key, values), errors={"evidence": refusal.detail})
    if evidence:
        body["evidence"] = evidence
    try:
        await web.backends.command(
            path,
            session.token,
            body,
            if_match=(filled_against := _version(posted.get("if_match"))),
            idempotency_key=str(posted.get("idempotency_key") or fresh_key())[:200],
        )
    except BackendRefused as refusal:
        if refusal.status not in (403, 404, 409, 412, 422):
            raise
        return _refused(Filled(command, path, key, values), form, refusal, filled_against)
    back, _, anchor = local_path(str(posted.get("back", "/"))).partition("#")
    done = f"{back}{'&' if '?' in back else '?'}done={command}" + (f"#{anchor}" if anchor else "")
    return RedirectResponse(done, status_code=303)


async def bounded_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """A posted form that may carry files, refused unread when it declares no length or too much
    (files are spooled to disk as they are parsed, never held whole in memory)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise Problem(411, "a form is sent with its length", field="Content-Length")
    if int(declared) > MAX_FORM_BYTES:
        raise Problem(413, f"a form with its files is at most {MAX_FORM_BYTES} bytes", field="body")
    return await request.form(max_files=max_files, max_fields=max_fields)


def _refused(filled: Filled, form: Form, refusal: BackendRefused, filled_against: int | None) -> Filled:
    if refusal.status == 412:
        return replace(
            filled,
            detail=gettext(
                "Someone changed this since you opened the form. What changed is marked below; "
                "check it, then send the form again."
            ),
            filled_against=filled_against,
        )
    errors = refusal.field_errors() if refusal.status == 422 else {}
    beside = {name: message for name, message in errors.items() if name in {f.name for f in form.fields}}
    # A refusal about nothing the form shows is said above the fields.
    return replace(filled, errors=beside, detail="" if beside and beside == errors else refusal.detail)


def _files(posted: FormData) -> list[UploadFile]:
    """The files chosen in the form's evidence field (a browser sends an empty part for none)."""
    return [f for f in posted.getlist("evidence") if isinstance(f, UploadFile) and f.filename]


async def _uploaded(web: WebRuntime, session: Session, file: UploadFile) -> Any:
    async def content() -> AsyncIterator[bytes]:
        while chunk := await file.read(UPLOAD_CHUNK):
            yield chunk

    media_type = (file.content_type or "application/octet-stream").split(";", 1)[0]
    return await web.backends.upload(session.token, PurePath(file.filename or "file").name[:255], media_type, content())


def _given(posted: FormData) -> dict[str, str]:
    """The body fields the action fixed (``given.<name>``): ids, never anything typed."""
    return {
        name.removeprefix("given."): value
        for name, value in posted.multi_items()
        if name.startswith("given.") and name.endswith("_id") and isinstance(value, str)
    }


def _values(posted: FormData) -> dict[str, list[str]]:
    skip = {"csrf", "command", "path", "key", "if_match", "idempotency_key", "back"}
    values: dict[str, list[str]] = {}
    for name, value in posted.multi_items():
        if name not in skip and not name.startswith("given.") and isinstance(value, str):
            values.setdefault(name, []).append(value[:20_000])
    return values


def _version(raw: Any) -> int | None:
    text = str(raw or "")
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None
