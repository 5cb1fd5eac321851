"""The consent screen of OAuth (which app, which scopes, which devices) and the user's list of granted apps."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.csp import console_csp_for
from ecohub.api.deps import ServicesDep
from ecohub.api.i18n import N_
from ecohub.api.routes.oauth import as_response, http_request, oauth_error
from ecohub.apps.domain import parse_scopes
from ecohub.auth import Principal
from ecohub.errors import ErrorCode, InvalidInput

router = APIRouter(route_class=ConsoleRoute)
SCOPE_TEXT = {  # English message ids: the consent page shows them in the user's language
    "homes:read": N_("see the names of the homes those devices are in"),
    "devices:read": N_("see the devices' state (the twin) and be told when it changes"),
    "devices:control": N_("switch and set the devices"),
    "telemetry:read": N_("read the devices' history (telemetry and events)"),
    "automations:write": N_("create automations for those devices (they stop when you withdraw the app's access)"),
}
OAUTH_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                "code_challenge_method")


@router.get("/oauth/authorize", response_class=HTMLResponse)
async def consent_page(request: Request, services: ServicesDep,
                       principal: Principal = Depends(user_only)) -> Response:
    """The consent screen: the app, what it asks to do, and a checkbox per device the user owns."""
    server = services.apps.oauth
    req = await http_request(request)
    try:
        grant = await run_in_threadpool(server.consent, req)
    except OAuth2Error as err:
        return oauth_error(server, err)
    client = grant.request.client.client
    scopes = parse_scopes(grant.request.scope or None, allowed=client.scopes)
    homes = await run_in_threadpool(services.apps.grants.grantable, principal)
    redirect_uri = (req.query and dict(req.query).get("redirect_uri")) or client.redirect_uris[0]
    page = render(request, "user/consent.html", principal, app=client.view(), scopes=scopes, scope_text=SCOPE_TEXT,
                  homes=homes, redirect_uri=redirect_uri,
                  params=[(k, v) for k, v in req.query if k in OAUTH_PARAMS])
    parts = urlsplit(redirect_uri)
    # the form's answer redirects to the app: form-action must admit its origin (browsers check redirects too)
    page.headers["content-security-policy"] = console_csp_for(f"{parts.scheme}://{parts.netloc}")
    return page


@router.post("/oauth/authorize")
async def consent(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> Response:
    """The user's answer: allow (a grant of the chosen devices, then a code to the app) or deny (access_denied)."""
    server = services.apps.oauth
    req = await http_request(request)
    form_items = req.form
    form = dict(form_items)
    # the authorization request, carried through the form, is what the server validates again
    req.query, req.form = [(k, v) for k, v in req.form if k in OAUTH_PARAMS], []
    try:
        grant = await run_in_threadpool(server.consent, req)
    except OAuth2Error as err:
        return oauth_error(server, err)
    if form.get("decision") != "allow":
        return as_response(await run_in_threadpool(server.authorize, req, None))
    dids = [v for k, v in form_items if k == "did"]
    if not dids:
        raise InvalidInput("choose at least one device to share with the app", code=ErrorCode.DEVICE_NOT_GRANTABLE)
    client = grant.request.client.client
    scopes = parse_scopes(grant.request.scope or None, allowed=client.scopes)
    user = await run_in_threadpool(services.apps.grants.approve, principal, client.client_id, scopes, dids)
    return as_response(await run_in_threadpool(server.authorize, req, user))


@router.get("/apps", response_class=HTMLResponse)
def apps_page(request: Request, services: ServicesDep, revoked: bool = False,
              principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The apps the user granted access, with their scopes and devices, each with a button to withdraw it."""
    return render(request, "user/apps.html", principal, grants=services.apps.grants.of_user(principal),
                  revoked=revoked)


@router.post("/apps/{grant_id}/revoke")
def revoke(grant_id: str, services: ServicesDep, principal: Principal = Depends(user_only)) -> Response:
    """Withdraw an app's access (the same service call as DELETE /api/v1/me/apps/{grant_id})."""
    services.apps.grants.revoke(principal, grant_id)
    return RedirectResponse("/console/apps?revoked=1", status_code=303)
