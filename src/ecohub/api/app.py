"""The FastAPI application: /api/v1 routers per context, one error format, size limits."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecohub.api import i18n
from ecohub.api.csp import CONSOLE_CSP
from ecohub.bootstrap import Services
from ecohub.certify.domain import MAX_EVIDENCE_BYTES
from ecohub.errors import EcohubError, PayloadTooLarge, TooManyRequests

MAX_BODY = 1024 * 1024
# routes that take a file have their own cap (their service checks the file's size again)
LARGE_BODIES: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"^/api/v1/products/[^/]+/evidence$"), MAX_EVIDENCE_BYTES + 64 * 1024),
    # firmware images are uploaded as one raw body (the service caps the image again)
    (re.compile(r"^/api/v1/firmware$"), 64 * 1024 * 1024 + 1),
]


def body_limit(path: str) -> int:
    """The largest request body accepted on this path."""
    return next((limit for pattern, limit in LARGE_BODIES if pattern.match(path)), MAX_BODY)


class BodyLimit:
    """Refuse request bodies over MAX_BODY with 413, however they are framed, without holding more than that.

    A declared Content-Length over the limit is refused before reading; a chunked (or lying) body is counted as
    it arrives and refused at the first byte over the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(str(scope.get("path", "")))
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            err = PayloadTooLarge(f"request body over {limit} bytes")
            await JSONResponse(err.to_dict(), status_code=err.status)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # an HTTPException passes FastAPI's body parsing unchanged; the handler renders our 413
                    raise StarletteHTTPException(413, detail=f"request body over {limit} bytes")
            return message

        await self.app(scope, counted, send)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Headers every response carries (no MIME sniffing, no framing, no referrer leaks); a CSP on the console."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        console = str(scope.get("path", "")).startswith("/console")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if console and not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CONSOLE_CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def translated(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """An error body with its message in the caller's language (Accept-Language) where the catalogue has it;
    the code never changes."""
    locale = i18n.negotiate(request.headers.get("accept-language"))
    if locale and locale != i18n.DEFAULT:
        body["error"]["message"] = i18n.translate_known(body["error"]["message"], locale)
    return body


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    return "; ".join(parts)


def create_app(services: Services) -> FastAPI:
    """Build the app for a set of services (no global state)."""
    from ecohub.api.console import mount_console
    from ecohub.api.openapi import apply_conventions, operation_id
    from ecohub.api.routes.apps import router as apps_router
    from ecohub.api.routes.automate import router as automate_router
    from ecohub.api.routes.certify import router as certify_router
    from ecohub.api.routes.connect import router as connect_router
    from ecohub.api.routes.ecosystem import router as ecosystem_router
    from ecohub.api.routes.firmware import router as firmware_router
    from ecohub.api.routes.home import router as home_router
    from ecohub.api.routes.notify import router as notify_router
    from ecohub.api.routes.ota import router as ota_router
    from ecohub.api.routes.privacy import router as privacy_router
    from ecohub.api.routes.security import router as security_router
    from ecohub.api.routes.telemetry import router as telemetry_router
    from ecohub.api.routes.tokens import router as tokens_router

    app = FastAPI(
        title="ecohub",
        version="0.1.0",
        description="An open platform for running a hardware ecosystem.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # /api/v1/docs: served by the console with the vendored Swagger UI (works offline)
        redoc_url=None,
        generate_unique_id_function=operation_id,  # operation ids are the route functions' names
    )
    app.state.services = services
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(EcohubError)
    async def ecohub_error(request: Request, err: EcohubError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        if isinstance(err, TooManyRequests):
            headers = {"Retry-After": str(err.retry_after), **getattr(err, "headers", {})}
        return JSONResponse(translated(err.to_dict(), request), status_code=err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": {"code": "invalid_input", "message": _validation_message(err)}},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(err.status_code,
                                                                                          "http_error")
        return JSONResponse({"error": {"code": code, "message": str(err.detail)}}, status_code=err.status_code)

    @app.get("/api/v1/health", tags=["meta"])
    def health(request: Request) -> JSONResponse:
        """Liveness and the ingest counters (public: no personal data); 503 while an ingest worker is down."""
        # read from the app, not a closure: FastAPI caches endpoint callables process-wide (an lru_cache keyed by the
        # function), and a closure over `services` kept every hub's services alive after its app was gone
        services: Services = request.app.state.services
        down = [w.client_id for w in services.workers if not w.alive]
        body = {"status": "degraded" if down else "ok", "cells": services.dbs.cells,
                "ingest": [{**w.stats.to_dict(), "alive": w.alive} for w in services.workers]}
        if down:
            body["problems"] = [f"ingest worker {c} is not consuming (it restarts by itself)" for c in down]
        return JSONResponse(body, status_code=503 if down else 200)

    app.include_router(home_router, prefix="/api/v1")
    app.include_router(ecosystem_router, prefix="/api/v1")
    app.include_router(connect_router, prefix="/api/v1")
    app.include_router(privacy_router, prefix="/api/v1")
    app.include_router(automate_router, prefix="/api/v1")
    app.include_router(certify_router, prefix="/api/v1")
    app.include_router(tokens_router, prefix="/api/v1")
    app.include_router(telemetry_router, prefix="/api/v1")
    app.include_router(security_router, prefix="/api/v1")
    app.include_router(firmware_router, prefix="/api/v1")
    app.include_router(ota_router, prefix="/api/v1")
    app.include_router(apps_router, prefix="/api/v1")
    app.include_router(notify_router, prefix="/api/v1")
    mount_console(app, services)
    apply_conventions(app)  # last: after every router (tags, operation ids, error responses in the document)
    return app
