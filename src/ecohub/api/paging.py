"""Cursor paging of list routes: an opaque `cursor` query parameter in, a `Link: <…>; rel="next"` header out.

The body of a list stays the JSON array it always was (clients that read it keep working); the next page is named by
the RFC 8288 `Link` header, as GitHub's API does. Offset/limit keep working where they existed."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from ecohub.errors import ErrorCode, InvalidInput

CursorParam = Annotated[str | None, Query(max_length=512, description="the opaque position of the next page: "
                                          "follow the `Link: <…>; rel=\"next\"` header of the previous page")]
INT64 = 2**63 - 1
LINK_HEADER = {"Link": {"description": "`<URL>; rel=\"next\"` when there is a next page (follow it as is)",
                        "schema": {"type": "string"}}}


def encode(position: dict[str, Any]) -> str:
    """An opaque cursor for a position (clients must not build or parse one)."""
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> dict[str, Any]:
    """The position a cursor names; a forged or damaged one is refused with 422 invalid_cursor."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise InvalidInput("the cursor is not one this API issued", code=ErrorCode.INVALID_CURSOR) from err
    if not isinstance(doc, dict):
        raise InvalidInput("the cursor is not one this API issued", code=ErrorCode.INVALID_CURSOR)
    return doc


def field(position: dict[str, Any], name: str, kind: type) -> Any:
    """One typed field of a decoded position (422 when missing or of another type)."""
    value = position.get(name)
    wrong_type = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    if wrong_type or (isinstance(value, int) and not -INT64 <= value <= INT64):
        raise InvalidInput("the cursor is not one this API issued", code=ErrorCode.INVALID_CURSOR)
    return value


def offset_of(cursor: str | None, offset: int) -> int:
    """The offset an offset-paged list starts at: the cursor's when given, else the `offset` parameter."""
    if cursor is None:
        return offset
    value = field(decode(cursor), "o", int)
    if not 0 <= value <= 10_000_000:
        raise InvalidInput("the cursor is not one this API issued", code=ErrorCode.INVALID_CURSOR)
    return int(value)


def link_next(request: Request, response: Response, position: dict[str, Any] | None) -> None:
    """Set the `Link` header naming the next page (same filters and limit, the cursor instead of any offset)."""
    if position is None:
        return
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "offset")]
    params.append(("cursor", encode(position)))
    response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'


def page(request: Request, response: Response, rows: list[Any], *, limit: int,
         position_of: Callable[[Any], dict[str, Any]]) -> list[Any]:
    """The first `limit` rows (the route fetched limit + 1 to know whether more exist) and the next link."""
    if len(rows) > limit:
        rows = rows[:limit]
        link_next(request, response, position_of(rows[-1]))
    return rows


def offset_page(request: Request, response: Response, rows: list[Any], *, limit: int, start: int) -> list[Any]:
    """`page` for a list fetched by offset (limit + 1 rows from `start`): the cursor names the next offset."""
    return page(request, response, rows, limit=limit, position_of=lambda _last: {"o": start + limit})
