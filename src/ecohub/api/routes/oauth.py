"""OAuth 2.1 endpoints: a thin Starlette adapter over the apps context's Authlib server (errors in RFC 6749 form)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from ecohub.api.deps import ServicesDep
from ecohub.apps.oauth import HttpRequest, OAuthServer

router = APIRouter(tags=["oauth"])
PUBLIC: dict[str, Any] = {"security": []}
FORM = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}}


async def http_request(request: Request) -> HttpRequest:
    """The parts of a Starlette request the OAuth server reads (form bodies are read here, on the loop)."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return HttpRequest(method=request.method, uri=str(request.url), headers=request.headers,
                       query=list(request.query_params.multi_items()), form=form)


def as_response(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    """Authlib's (status, body, headers) as a response."""
    status, body, headers = result
    return Response(content=body or "", status_code=status, headers=dict(headers),
                    media_type=None if status in (301, 302, 303) else "application/json")


def oauth_error(server: OAuthServer, err: OAuth2Error) -> Response:
    """An OAuth error: to the client's redirect URI when it was validated, else a 400 with the RFC 6749 body."""
    return as_response(server.handle_response(*err(None)))


@router.get("/oauth/authorize", openapi_extra=PUBLIC)
async def authorize(request: Request, services: ServicesDep) -> Response:
    """Start the authorization code flow (PKCE S256 required): the request is checked (client, exact redirect URI,
    scopes, code challenge), then the user signs in to the console and sees the consent screen."""
    server = services.apps.oauth
    req = await http_request(request)
    try:
        await run_in_threadpool(server.consent, req)
    except OAuth2Error as err:
        return oauth_error(server, err)
    return RedirectResponse("/console/oauth/authorize?" + urlencode(req.query), status_code=303)


async def _endpoint(request: Request, server: OAuthServer, call: Callable[[HttpRequest], Any]) -> Response:
    req = await http_request(request)
    try:
        return as_response(await run_in_threadpool(call, req))
    except OAuth2Error as err:  # raised before Authlib's own handling, e.g. plain http off loopback
        return oauth_error(server, err)


@router.post("/oauth/token", openapi_extra={**PUBLIC, **FORM})
async def oauth_token(request: Request, services: ServicesDep) -> Response:
    """Exchange a code (with its PKCE verifier) or a refresh token (rotated: each is good once) for tokens; the
    client authenticates with its id and secret (HTTP Basic or form)."""
    return await _endpoint(request, services.apps.oauth, services.apps.oauth.token)


@router.post("/oauth/revoke", openapi_extra={**PUBLIC, **FORM})
async def revoke(request: Request, services: ServicesDep) -> Response:
    """RFC 7009: revoke an access or refresh token (and the rest of its family); 200 even for unknown tokens."""
    return await _endpoint(request, services.apps.oauth, services.apps.oauth.revoke)


@router.post("/oauth/introspect", openapi_extra={**PUBLIC, **FORM})
async def introspect(request: Request, services: ServicesDep) -> Response:
    """RFC 7662: whether one of the app's own tokens is active, with its scope, user, grant and expiry."""
    return await _endpoint(request, services.apps.oauth, services.apps.oauth.introspect)


