"""Shared pieces of the console: templates, the cookie session, role checks and HTML error pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from ecohub.api.deps import ServicesDep, role_gate
from ecohub.auth import USER_TOKEN_PREFIX, Principal, Role
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError, ErrorCode, Forbidden, Unauthorized

COOKIE = "ecohub_console"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def _ms_time(ms: int | None) -> str:
    """A unix-ms timestamp as a short UTC time."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: Any) -> str:
    """A decimal string as a compact amount (1.2 bn, 35.0 m)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    for size, suffix in ((1e9, " bn"), (1e6, " m"), (1e3, " k")):
        if abs(v) >= size:
            return f"{v / size:,.1f}{suffix}"
    return f"{v:,.0f}"


TEMPLATES.env.filters["ms_time"] = _ms_time
TEMPLATES.env.filters["money"] = _money
TEMPLATES.env.filters["tojson_attr"] = lambda v: json.dumps(v, separators=(",", ":"), default=str)


class LoginRequired(Exception):
    """The console needs a session (raised by the cookie dependency, answered by a redirect)."""


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cross_site(request: Request) -> Forbidden | None:
    """A state-changing request another site's page made with the user's cookie (CSRF): refused.

    Browsers name the page's origin on every cross-origin POST (`Origin`, else `Referer`, and `Sec-Fetch-Site`);
    the console's own forms come from its own origin."""
    if request.method not in UNSAFE:
        return None
    own = f"{request.url.scheme}://{request.url.netloc}"
    if request.headers.get("sec-fetch-site") == "cross-site":
        return Forbidden("this request came from another site", code=ErrorCode.CROSS_SITE)
    origin = request.headers.get("origin")
    if origin is None and (referer := request.headers.get("referer")):
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is not None and origin != own:
        return Forbidden(f"this request came from {origin}, not from the console", code=ErrorCode.CROSS_SITE)
    return None


class ConsoleRoute(APIRoute):
    """A route whose errors render as HTML: a redirect to the login page, or an error page with the message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            refusal = cross_site(request)
            if refusal is not None:
                return TEMPLATES.TemplateResponse(request, "error.html", {"error": refusal, "principal": None},
                                                  status_code=refusal.status)
            try:
                return await handler(request)
            except LoginRequired:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": "/console/login"})
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303)
            except EcohubError as err:
                if isinstance(err, Unauthorized):
                    return RedirectResponse("/console/login", status_code=303)
                if request.headers.get("hx-request"):
                    return HTMLResponse(f'<p class="error" role="alert">{escape(err.message, quote=False)}</p>',
                                        status_code=200)
                return TEMPLATES.TemplateResponse(request, "error.html", {"error": err, "principal": None},
                                                  status_code=err.status)

        return guarded


def authenticate(services: Services, token: str) -> Principal:
    """The principal behind a console session token (the same checks the API's bearer auth makes)."""
    if token.startswith(USER_TOKEN_PREFIX):
        return services.home.accounts.authenticate(token)
    return services.tokens.authenticate(token)


def session_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller of a console route, from the HttpOnly session cookie."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        return authenticate(services, token)
    except Unauthorized as err:
        raise LoginRequired() from err


def console_role(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting console sessions of the given roles."""
    return role_gate(session_principal, *roles, name="console")


operator_only = console_role(Role.OPERATOR)
partner_only = console_role(Role.PARTNER)
user_only = console_role(Role.USER)


def render(request: Request, template: str, principal: Principal | None, **context: Any) -> HTMLResponse:
    """A page or fragment with the caller in its context."""
    return TEMPLATES.TemplateResponse(request, template, {"principal": principal, **context})


def home_path(principal: Principal) -> str:
    """Where a role lands after signing in."""
    return {Role.OPERATOR: "/console/", Role.PARTNER: "/console/partner", Role.USER: "/console/homes"}[principal.role]
