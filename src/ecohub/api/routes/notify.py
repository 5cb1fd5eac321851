"""HTTP routes of notifications: the caller's list (newest first, cursor paged), marking read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from ecohub.api import i18n, paging
from ecohub.api.deps import ServicesDep, UserDep
from ecohub.auth import Principal
from ecohub.bootstrap import Services

router = APIRouter(tags=["notifications"])


def reader_locale(request: Request, services: Services, principal: Principal) -> str:
    """The language to word notifications in: the request's Accept-Language, else the account's, else English."""
    asked = i18n.negotiate(request.headers.get("accept-language"))
    if asked:
        return asked
    chosen = services.home.accounts.locales(principal.cell or "", [principal.subject]).get(principal.subject)
    return i18n.normalize(chosen) or i18n.DEFAULT


@router.get("/me/notifications", responses={200: {"headers": paging.LINK_HEADER}})
def my_notifications(services: ServicesDep, principal: UserDep, request: Request, response: Response,
                     cursor: paging.CursorParam = None, limit: int = Query(50, ge=1, le=500),
                     unread: bool = Query(False, description="only the unread ones")) -> list[dict[str, Any]]:
    """The caller's notifications, newest first; the header `Unread-Count` says how many are unread.

    `title` and `body` are worded in the request's Accept-Language (else the account's language); `code` and
    `params` name ecohub's own messages for clients that word them themselves (null: free text, e.g. a rule's)."""
    after = None
    if cursor is not None:
        pos = paging.decode(cursor)
        after = (paging.field(pos, "t", int), paging.field(pos, "i", str))
    rows = services.notifications.list(principal, limit=limit + 1, after=after, unread=unread,
                                       locale=reader_locale(request, services, principal))
    response.headers["Unread-Count"] = str(services.notifications.unread_count(principal))
    return paging.page(request, response, rows, limit=limit,
                       position_of=lambda n: {"t": n["created_ms"], "i": n["id"]})


@router.post("/me/notifications/{notification_id}:read")
def read_notification(notification_id: str, request: Request, services: ServicesDep,
                      principal: UserDep) -> dict[str, Any]:
    """Mark one notification read (again is harmless)."""
    return services.notifications.read(principal, notification_id,
                                       locale=reader_locale(request, services, principal))


@router.post("/me/notifications:read-all")
def read_all_notifications(services: ServicesDep, principal: UserDep) -> dict[str, int]:
    """Mark every unread notification of the caller read; → how many were marked."""
    return {"marked": services.notifications.read_all(principal)}
