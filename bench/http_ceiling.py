"""The HTTP ceiling for the tasks benchmark: the same FastAPI edge (middleware, token check,
body validation) answering the progress route without deciding or producing anything."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from services.tasks.domain.commands import ProgressBody
from shared.auth import AuthSettings, TokenVerifier
from shared.http.service import Authenticated, create_service_app, serve
from shared.process import run
from shared.settings import RuntimeSettings, ServiceSettings


class Nothing:
    verifier = TokenVerifier(AuthSettings(), RuntimeSettings(env="dev"))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def public_keys(self) -> dict[str, Any]:
        return {"keys": []}


def create_app() -> FastAPI:
    app = create_service_app("ceiling", Nothing(), title="ceiling", description="no-op")

    @app.post("/v1/tasks/{task_id}/progress")
    async def report_progress(task_id: str, actor: Authenticated, body: ProgressBody) -> dict[str, Any]:
        return {"id": task_id, "version": body.percent}

    return app


if __name__ == "__main__":
    run(serve(create_app(), ServiceSettings(port=int(os.environ.get("PORT", "18998")))))
