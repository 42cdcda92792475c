"""OpenAPI links from what an answer gives to the operations that need it: a route says which path
parameters its answer fills (``fills``), and every operation whose path those values complete
is linked to it, so that a client (or a fuzzer's stateful phase) can follow one call by the next."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI

FILLS = "x-fills"
"""The extension a route carries: path parameter name → runtime expression into its answer."""


def fills(**expressions: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose answer gives these path parameters their values."""
    return {FILLS: expressions}


def document_links(app: FastAPI) -> None:
    """Adds, to the app's OpenAPI document, the links that the routes' ``fills`` imply."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            link_operations(generate())
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customize it


def link_operations(schema: dict[str, Any]) -> None:
    """Writes the links into ``schema`` in place, and drops the ``fills`` extensions."""
    operations = list(_operations(schema))
    for source_path, _, source in operations:
        given = source.pop(FILLS, None)
        if not given:
            continue
        known = {name: f"$request.path.{name}" for name in _parameters(source_path)} | dict(given)
        links: dict[str, Any] = {}
        for target_path, method, target in operations:
            needed = _parameters(target_path)
            if (target is source) or not needed or not set(given) & set(needed) or not set(needed) <= set(known):
                continue
            links[f"{method.upper()} {target_path}"] = {
                "operationId": target["operationId"],
                "parameters": {name: known[name] for name in needed},
            }
        if links:
            _success(source)["links"] = links


def _operations(schema: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                yield path, method, operation


def _parameters(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _success(operation: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = operation["responses"]
    status = min(code for code in responses if code.startswith("2"))
    success: dict[str, Any] = responses[status]
    return success
