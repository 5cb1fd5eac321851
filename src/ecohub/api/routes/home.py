"""HTTP routes of the home context: sign-up, tokens and sign-out here; homes and user devices in sub-routers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from ecohub.api.deps import ServicesDep, bearer, get_principal, require
from ecohub.api.routes.home_devices import router as devices_router
from ecohub.api.routes.homes import router as homes_router
from ecohub.auth import Principal, Role

router = APIRouter(tags=["auth"])
PUBLIC: dict[str, Any] = {"security": []}  # marks the few routes anyone may call in the OpenAPI document


class SignupIn(BaseModel):
    """A new end-user account; the country pins it to a region cell."""

    email: str = Field(max_length=254, examples=["ada@example.org"])
    password: str = Field(max_length=256)
    country: str = Field(min_length=2, max_length=2, examples=["DE"])


@router.post("/auth/signup", status_code=201, openapi_extra=PUBLIC)
def signup(body: SignupIn, services: ServicesDep) -> dict[str, str]:
    """Create an account (public): → {user_id, cell}; the cell is where all the user's data lives."""
    return services.home.accounts.signup(email=body.email, password=body.password, country=body.country)


@router.post("/auth/token", openapi_extra=PUBLIC)
def token(request: Request, services: ServicesDep, username: str = Form(max_length=254),
          password: str = Form(max_length=256),
          cell: str | None = Form(None, description="the account's region cell, if known (saves probing cells)"),
          ) -> dict[str, Any]:
    """OAuth2 password flow (public): email as username → a bearer access token with its lifetime; throttled per
    address and per account (429 with Retry-After)."""
    return services.home.accounts.signin(email=username, password=password, cell=cell,
                                         source=request.client.host if request.client else None)


@router.post("/auth/logout", status_code=204)
def logout(services: ServicesDep, principal: Principal = Depends(get_principal),
           creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Revoke the presented token (any role); it is refused from the next request on."""
    assert creds is not None
    if principal.role == Role.USER:
        services.home.accounts.logout(creds.credentials)
    elif principal.role == Role.APP:
        services.apps.grants.logout(creds.credentials)
    else:
        services.tokens.revoke(principal.subject)


class PasswordChangeIn(BaseModel):
    """A new password, re-authenticated with the current one."""

    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class ResetRequestIn(BaseModel):
    """Where to send a reset link (if an account has this address)."""

    email: str = Field(max_length=254)


class ResetConfirmIn(BaseModel):
    """The token from the mailed link and the new password."""

    token: str = Field(max_length=200)
    new_password: str = Field(max_length=256)


@router.post("/auth/password")
def change_password(body: PasswordChangeIn, services: ServicesDep, principal: Principal = Depends(require(Role.USER)),
                    creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict[str, Any]:
    """Change the caller's password (users): the current password is required; every other session and token of
    the account is revoked (this one stays)."""
    return services.home.passwords.change(principal, current_password=body.current_password,
                                          new_password=body.new_password,
                                          keep_token=creds.credentials if creds else None)


@router.post("/auth/password-reset", status_code=202, openapi_extra=PUBLIC)
def request_reset(body: ResetRequestIn, request: Request, services: ServicesDep) -> dict[str, str]:
    """Ask for a password-reset link (public): always 202, whether or not an account has the address; throttled
    per address and per source (429 with Retry-After)."""
    services.home.passwords.request_reset(body.email, source=request.client.host if request.client else None)
    return {"status": "if an account has this address, a reset link is on its way"}


@router.post("/auth/password-reset/confirm", openapi_extra=PUBLIC)
def confirm_reset(body: ResetConfirmIn, services: ServicesDep) -> dict[str, Any]:
    """Set a new password with the token from the link (public): single-use, expiring; every session ends."""
    return services.home.passwords.confirm_reset(body.token, body.new_password)


@router.get("/auth/me")
def me(principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    """Who the bearer token belongs to (any role)."""
    return {"role": principal.role, "subject": principal.subject, "partner_id": principal.partner_id,
            "cell": principal.cell}


@router.get("/me")
def profile(services: ServicesDep, principal: Principal = Depends(require(Role.USER))) -> dict[str, Any]:
    """The caller's account (users only)."""
    return services.home.accounts.profile(principal)


router.include_router(homes_router)
router.include_router(devices_router)
