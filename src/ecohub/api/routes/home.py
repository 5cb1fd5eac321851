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
