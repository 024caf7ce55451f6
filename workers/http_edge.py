"""The HTTP edge of the job service: body limits, error bodies and the status codes the OpenAPI schema promises."""
from __future__ import annotations

import json
from typing import Optional

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error answer: one line naming the culprit and the fix; 422s add the field errors."""

    detail: str
    errors: Optional[list[dict]] = None


def error_responses(*codes: int) -> dict:
    """OpenAPI `responses` entries for these error status codes, all with ErrorBody."""
    what = {400: "bad request", 401: "missing or wrong bearer token",
            404: "no such job, or this service runs no workers (no model) for it",
            413: "request body or job too large", 422: "invalid request (the field and why)",
            503: "the model worker failed to generate"}
    return {code: {"model": ErrorBody, "description": what[code]} for code in codes}


class BodyLimit:
    """ASGI middleware: 413 for bodies over `max_bytes`, by Content-Length or, for chunked bodies, as read.

    A chunked body is read here (at most `max_bytes`) before the app sees it: an error raised while
    the app reads would come back as FastAPI's 400, not 413.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                return await _too_large(self.max_bytes, send)
            return await self.app(scope, receive, send)  # the server holds the client to its Content-Length
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                return await _too_large(self.max_bytes, send)
            if not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _too_large(max_bytes: int, send) -> None:
    body = json.dumps({"detail": f"request body exceeds the service limit of {max_bytes} bytes "
                                 "(max_body_bytes); split the job"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def allowed_methods(app, scope) -> list[str]:
    """Every method some route serves at this request's path (Starlette's 405 names only the first route's)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)
