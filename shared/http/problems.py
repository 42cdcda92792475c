"""The one error format: RFC 9457 ``application/problem+json`` naming the offending field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.auth import AuthError
from shared.domain.refusals import Busy, RefusalKind, Refused
from shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)

TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    411: "Length required",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class FieldProblem(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, with the fields at fault when there are any."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
REFUSAL_STATUS: dict[RefusalKind, int] = {
    RefusalKind.FORBIDDEN: 403,
    RefusalKind.NOT_FOUND: 404,
    RefusalKind.CONFLICT: 409,
    RefusalKind.INVALID: 422,
    RefusalKind.BUSY: 429,
}
"""The one table from a refusal's kind to its status: HTTP answers and ``command.rejected`` alike."""
DESCRIPTIONS = {
    401: "No bearer token, or one that does not verify",
    403: "Not your responsibility",
    404: "Not found",
    409: "Conflict with the current state, or the same Idempotency-Key still in flight",
    412: "If-Match names a version the aggregate has moved past",
    413: "The request body is over 64 KiB",
    422: "Invalid request; `errors` names each field",
    429: "Over a per-user or overall bound (`shared/bounds.py`); retry after `Retry-After`",
    503: "Unavailable for now; retry after `Retry-After`",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses, each an ``application/problem+json`` document."""
    return {
        status: {
            "description": DESCRIPTIONS.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status in statuses
    }


def document_problems(app: FastAPI) -> None:
    """Adds the Problem schema that ``problem_responses`` refers to, to the app's OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customize it


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.title, self.field = status, detail, title, field
        self.headers, self.extra = headers or {}, extra


def problem_body(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    field: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["errors"] = [{"field": field, "message": detail}]
    body.update(extra)
    return body


def problem_response(status: int, detail: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, **kwargs), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic/FastAPI errors as ``{"field": "body.percent", "message": ...}``."""
    named = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            location = location[:1]  # the position inside the body is not a field
        named.append({"field": ".".join(location) or "body", "message": error.get("msg", "invalid")})
    return named


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = field_errors(error.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(Problem)
    async def problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(
            error.status,
            error.detail,
            title=error.title,
            field=error.field,
            instance=request.url.path,
            headers=error.headers,
            **error.extra,
        )

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        retry = {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, Busy) else None
        return problem_response(
            REFUSAL_STATUS[error.kind],
            error.detail,
            title=error.title,
            field=error.field,
            instance=request.url.path,
            headers=retry,
        )

    @app.exception_handler(AuthError)
    async def unauthenticated(request: Request, error: AuthError) -> JSONResponse:
        return problem_response(
            401, str(error), instance=request.url.path, headers={"WWW-Authenticate": 'Bearer realm="policytrack"'}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and str(error.detail).startswith("There was an error parsing the body"):
            # FastAPI's answer to a body that is not even text; the same answer as to bad JSON.
            detail = "the body is not JSON text (UTF-8)"
            return problem_response(
                422, detail, instance=request.url.path, errors=[{"field": "body", "message": detail}]
            )
        return problem_response(
            error.status_code, str(error.detail), instance=request.url.path, headers=getattr(error, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal error; the request may be retried", instance=request.url.path)
