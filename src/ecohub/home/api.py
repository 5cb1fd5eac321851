"""HTTP routes of the home context (tokens now; accounts, homes and sharing build on them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ecohub.api.deps import get_principal
from ecohub.home.domain import Principal

router = APIRouter(tags=["auth"])


@router.get("/auth/me")
def me(principal: Principal = Depends(get_principal)) -> dict[str, Any]:
    """Who the bearer token belongs to."""
    return {"role": principal.role, "subject": principal.subject, "partner_id": principal.partner_id}
