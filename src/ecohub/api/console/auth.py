"""Console sign-in and sign-out: an operator/partner token or a user's email and password → an HttpOnly cookie."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ecohub.api import i18n
from ecohub.api.console.common import COOKIE, ConsoleRoute, authenticate, home_path, render, user_only
from ecohub.api.deps import ServicesDep
from ecohub.auth import USER_TOKEN_PREFIX, Principal, Role
from ecohub.errors import EcohubError

router = APIRouter(route_class=ConsoleRoute)


def _safe_next(target: str | None) -> str | None:
    """Only local console paths (no open redirects)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The sign-in page: operators and partners paste a token, users give email and password."""
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, services: ServicesDep, token: str = Form(""), email: str = Form(""),
          password: str = Form(""), next: str = Form("")) -> Response:
    """Check the credentials with the same services the API uses, then set the session cookie."""
    try:
        if email.strip():
            source = request.client.host if request.client else None
            bearer = str(services.home.accounts.signin(email=email, password=password, source=source)["access_token"])
        elif token.strip():
            bearer = token.strip()
        else:
            return render(request, "login.html", None, next=_safe_next(next),
                          error=i18n.gettext("Give a token, or an email and a password."))
        principal = authenticate(services, bearer)
        if principal.role != Role.USER:
            # the cookie never holds the pasted token itself: a session token of its own, revoked at sign-out
            bearer = str(services.tokens.create(role=principal.role, partner_id=principal.partner_id,
                                                label=f"console session of token {principal.subject}",
                                                ttl_s=services.settings.api.console_session_s)["token"])
    except EcohubError as err:
        page = render(request, "login.html", None, next=_safe_next(next),
                      error=i18n.translate_known(err.message, i18n.current()))
        page.status_code = 401
        return page
    target = _safe_next(next) or home_path(principal)
    response = RedirectResponse(target, status_code=303)
    preferred = services.home.accounts.profile(principal).get("locale") if principal.role == Role.USER else None
    if preferred:
        response.set_cookie(i18n.COOKIE, preferred, max_age=LANG_MAX_AGE, path="/", samesite="lax",
                            secure=request.url.scheme == "https")
    api = services.settings.api
    max_age = api.token_ttl_s if principal.role == Role.USER else api.console_session_s
    response.set_cookie(COOKIE, bearer, httponly=True, samesite="strict", max_age=max_age, path="/console",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request, services: ServicesDep) -> Response:
    """Sign out: a user's access token is revoked; the cookie is cleared for everyone."""
    token = request.cookies.get(COOKIE, "")
    try:
        if token.startswith(USER_TOKEN_PREFIX):
            services.home.accounts.logout(token)
        elif token:
            services.tokens.revoke_secret(token)  # the session token this sign-in minted
    except EcohubError:
        pass
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The change-password form (users)."""
    return render(request, "user/password.html", principal, error=None, done=None)


@router.post("/password", response_class=HTMLResponse)
def change_password(request: Request, services: ServicesDep, current_password: str = Form(""),
                    new_password: str = Form(""), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Change the password with the current one; every other session of the account ends, this one stays."""
    try:
        done = services.home.passwords.change(principal, current_password=current_password,
                                              new_password=new_password, keep_token=request.cookies.get(COOKIE))
    except EcohubError as err:
        page = render(request, "user/password.html", principal, error=err.message, done=None)
        page.status_code = err.status
        return page
    return render(request, "user/password.html", principal, error=None, done=done["revoked_sessions"])


@router.get("/password-reset", response_class=HTMLResponse)
def reset_page(request: Request) -> HTMLResponse:
    """Ask for a reset link, or set a new password with one (the link's token arrives in the URL fragment)."""
    return render(request, "password_reset.html", None, error=None, sent=False, done=False)


@router.post("/password-reset", response_class=HTMLResponse)
def request_reset(request: Request, services: ServicesDep, email: str = Form("")) -> HTMLResponse:
    """Mail a reset link if an account has the address; the page says the same either way."""
    try:
        services.home.passwords.request_reset(email, source=request.client.host if request.client else None)
    except EcohubError as err:  # throttled
        page = render(request, "password_reset.html", None, error=err.message, sent=False, done=False)
        page.status_code = err.status
        return page
    return render(request, "password_reset.html", None, error=None, sent=True, done=False)


@router.post("/password-reset/confirm", response_class=HTMLResponse)
def confirm_reset(request: Request, services: ServicesDep, token: str = Form(""),
                  new_password: str = Form("")) -> HTMLResponse:
    """Set the new password with the link's token (single-use, expiring)."""
    try:
        services.home.passwords.confirm_reset(token.strip(), new_password)
    except EcohubError as err:
        page = render(request, "password_reset.html", None, error=err.message, sent=False, done=False)
        page.status_code = err.status
        return page
    response = render(request, "password_reset.html", None, error=None, sent=False, done=True)
    response.delete_cookie(COOKIE, path="/console")
    return response


LANG_MAX_AGE = 365 * 24 * 3600


@router.post("/language")
def language(request: Request, services: ServicesDep, lang: str = Form(...), next: str = Form("")) -> Response:
    """The language switcher: remember the choice in a cookie (and on a signed-in user's account)."""
    locale = i18n.normalize(lang) or i18n.DEFAULT
    token = request.cookies.get(COOKIE, "")
    if token.startswith(USER_TOKEN_PREFIX):
        try:
            services.home.accounts.set_locale(authenticate(services, token), locale)
        except EcohubError:
            pass  # a stale session still gets the cookie; the account keeps its choice
    response = RedirectResponse(_safe_next(next) or "/console/", status_code=303)
    response.set_cookie(i18n.COOKIE, locale, max_age=LANG_MAX_AGE, path="/", samesite="lax",
                        secure=request.url.scheme == "https")
    return response
