"""Request dependencies: the services, the caller, and role checks every route declares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ecohub.apps.domain import ACCESS_PREFIX
from ecohub.apps.quota import headers_of
from ecohub.auth import USER_TOKEN_PREFIX, Principal, Role
from ecohub.bootstrap import Services
from ecohub.errors import ErrorCode, Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="an operator/partner token or a user access token")


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and two
# such hops per request (this one and the role check) were a measurable part of a command's CPU (bench/commands.py).
async def get_services(request: Request) -> Services:
    """The hub's services (set on the app by create_app)."""
    services: Services = request.app.state.services
    return services


def get_principal(services: ServicesDep, response: Response,
                  creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """Authenticate the bearer token (user and app tokens name their cell; operator/partner tokens are global); 401
    without. User and app requests count against their quotas (429 over it) and carry the RateLimit headers."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required", code=ErrorCode.MISSING_TOKEN)
    if creds.credentials.startswith(USER_TOKEN_PREFIX):
        principal = services.home.accounts.authenticate(creds.credentials)
    elif creds.credentials.startswith(ACCESS_PREFIX):
        principal = services.apps.grants.authenticate(creds.credentials)
    else:
        return services.tokens.authenticate(creds.credentials)
    response.headers.update(headers_of(services.apps.quotas.request(principal)))
    return principal


def role_gate(source: Callable[..., Principal], *roles: Role, name: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that takes the caller from `source` and admits only the given roles."""

    async def check(principal: Principal = Depends(source)) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}; the caller is {principal.role}",
                            code=ErrorCode.WRONG_ROLE)
        return principal

    check.__name__ = f"{name}_" + "_".join(roles)
    return check


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only the given roles (bearer token)."""
    return role_gate(get_principal, *roles, name="require")


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
StaffDep = Annotated[Principal, Depends(require(Role.OPERATOR, Role.PARTNER))]
UserDep = Annotated[Principal, Depends(require(Role.USER))]
UserOrAppDep = Annotated[Principal, Depends(require(Role.USER, Role.APP))]  # the service checks scope and grant


# Every integer the API takes is bounded (an unbounded one reached SQLite as an OverflowError, a 500).
INT64_MAX = 2**63 - 1
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many items (1 to 1000)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="skip this many items")]
SmallCount = Annotated[int, Query(ge=1, le=1000)]
Millis = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="unix time in milliseconds")]
RowId = Annotated[int, Path(ge=1, le=INT64_MAX)]
