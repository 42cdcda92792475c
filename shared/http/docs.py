"""``/docs`` served from our own process: Swagger UI's assets come from the pinned
``fastapi-swagger`` package, so the page renders on a network with no way out."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_swagger import patch_fastapi

SWAGGER_UI_PARAMETERS = {
    # No badge from validator.swagger.io: the page asks nothing of any other host.
    "validatorUrl": None,
    "tryItOutEnabled": True,
    "persistAuthorization": True,
    "filter": True,
    "displayRequestDuration": True,
}


def serve_docs_locally(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its script, style and icon under ``/swagger/``. The app must
    be made with ``docs_url=None`` and ``redoc_url=None`` (ReDoc would load from a CDN)."""
    patch_fastapi(app, docs_url="/docs", redirect_from_root_to_docs=False, swagger_ui_parameters=SWAGGER_UI_PARAMETERS)
