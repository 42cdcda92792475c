"""Refuses request bodies over a limit (413) before the application reads them.

A declared ``Content-Length`` over the limit is refused at once; a body without one
(chunked) is read here, up to the limit, and handed on only if it fits, so the answer is
413 whatever the framework would have made of a body cut short.
"""

from __future__ import annotations

import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import PROBLEM_JSON, problem_body


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, streamed: re.Pattern[str] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed
        """Paths whose routes take files: they read the body as a stream and bound it themselves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.streamed is not None and self.streamed.fullmatch(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        buffered = await self._read_within_limit(receive)
        if buffered is None:
            await self._refuse(scope, send)
            return
        replay = iter(buffered)

        async def replaying_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replaying_receive, send)

    async def _read_within_limit(self, receive: Receive) -> list[Message] | None:
        """Every message of the body, or None once it passes the limit."""
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = orjson.dumps(
            problem_body(413, f"the request body is over {self.max_bytes} bytes", instance=scope.get("path"))
        )
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
