"""Shared pieces of the console: templates, the cookie session, role checks and HTML error pages."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from ecohub.api import i18n
from ecohub.api.console.words import install_filters
from ecohub.api.deps import ServicesDep, role_gate
from ecohub.auth import USER_TOKEN_PREFIX, Principal, Role
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError, ErrorCode, Forbidden, Unauthorized

COOKIE = "ecohub_console"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


TEMPLATES.env.add_extension("jinja2.ext.i18n")
TEMPLATES.env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=lambda message: i18n.translations(i18n.current()).ugettext(message),
    ngettext=lambda s, p, n: i18n.translations(i18n.current()).ungettext(s, p, n), newstyle=True)
install_filters(TEMPLATES.env)
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
            locale = request_locale(request)
            token = i18n.activate(locale)
            try:
                return await self._answer(handler, request)
            finally:
                i18n.deactivate(token)

        return guarded

    @staticmethod
    async def _answer(handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request) -> Response:
        refusal = cross_site(request)
        if refusal is not None:
            return page(request, "error.html", None, status_code=refusal.status, error=refusal)
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
            message = i18n.translate_known(err.message, i18n.current())
            if request.headers.get("hx-request"):
                return HTMLResponse(f'<p class="error" role="alert">{escape(message, quote=False)}</p>',
                                    status_code=200)
            return page(request, "error.html", None, status_code=err.status, error=err, message=message)


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


def console_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting console sessions of the given roles."""
    return role_gate(session_principal, *roles, name="console")


operator_only = console_role(Role.OPERATOR)
partner_only = console_role(Role.PARTNER)
user_only = console_role(Role.USER)


def request_locale(request: Request) -> str:
    """The locale of a console request: the language cookie (switcher, account preference), else the browser's."""
    locale = i18n.choose(cookie=request.cookies.get(i18n.COOKIE),
                         accept_language=request.headers.get("accept-language"))
    request.state.locale = locale
    return locale


def page(request: Request, template: str, principal: Principal | None, *, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    """A page or fragment in the request's language, with the caller and the language switcher in its context."""
    locale = getattr(request.state, "locale", None) or request_locale(request)
    token = i18n.activate(locale)
    try:  # the template renders right here, while the locale is the request's
        return TEMPLATES.TemplateResponse(request, template, {
            "principal": principal, "locale": locale, "lang": i18n.html_lang(locale),
            "languages": [(code, names[0]) for code, names in i18n.LANGUAGES.items()], **context},
            status_code=status_code)
    finally:
        i18n.deactivate(token)


def render(request: Request, template: str, principal: Principal | None, **context: Any) -> HTMLResponse:
    """A page or fragment with the caller in its context (an operator's pages also carry the number of open
    critical security findings: the banner)."""
    if principal is not None and principal.role == Role.OPERATOR and "security_alerts" not in context:
        services: Services | None = getattr(request.app.state, "services", None)
        context["security_alerts"] = services.security.service.open_critical(principal) if services else 0
    return page(request, template, principal, **context)


def home_path(principal: Principal) -> str:
    """Where a role lands after signing in."""
    return {Role.OPERATOR: "/console/", Role.PARTNER: "/console/partner", Role.USER: "/console/homes"}[principal.role]
