"""HTTP routes of operator and partner tokens: list them (never their secrets) and revoke them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ecohub.api.deps import ServicesDep, StaffDep

router = APIRouter(tags=["tokens"])


@router.get("/tokens")
def list_tokens(services: ServicesDep, principal: StaffDep, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Active operator and partner tokens, newest first (a partner sees its own); `include_inactive` adds the
    expired and revoked ones."""
    return services.tokens.list(caller=principal, include_inactive=include_inactive)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, services: ServicesDep, principal: StaffDep) -> Response:
    """Revoke a token at once (a partner: only its own); a revoked token is refused from the next request on."""
    services.tokens.revoke(token_id, caller=principal)
    return Response(status_code=204)
