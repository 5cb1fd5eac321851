"""The REST conventions of the OpenAPI document: one tag per operation (with descriptions), stable snake_case
operation ids taken from the route functions' names, and the `{"error": {code, message}}` body on every 4xx."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

# One line per tag: the merger of a new router adds its tag here (tests/api/test_conventions.py checks that every
# tag used has a description).
TAGS: dict[str, str] = {
    "meta": "Liveness and ingest counters.",
    "auth": "Sign-up, sign-in (OAuth2 password flow), sign-out, who am I.",
    "homes": "A user's homes, rooms, claimed devices and sharing.",
    "my devices": "What a phone app shows and controls: the caller's devices with friendly names.",
    "automations": "Rules per home: triggers, conditions, actions; enable, disable, run now, history.",
    "devices": "Provisioning, twins, telemetry and events, commands, dead letters, broker refusals.",
    "products": "Products, their miot-spec-v2 documents and lifecycle.",
    "partners": "The partner registry, investment rounds, cap tables, exits and the portfolio.",
    "supply": "Suppliers, components, bills of materials, aggregated demand.",
    "channel": "Markets, categories, channel listings, catalogue queries, KPIs.",
    "certification": "Signed certification reports per product.",
    "privacy": "Consents, export, erasure, rectification, partners' pseudonymous feed, the operators' DSR desk.",
    "tokens": "Operator and partner API tokens.",
    "telemetry": "Retention of each product's telemetry.",
    "designs": "Industrial-design records of a product: versioned files, the brand's approval.",
    "pricing": "The brand's pricing policy per product and market: BOM cost, margin floor and ceiling, price band.",
    "firmware": "Firmware images: partners' signing keys, signed uploads, the brand's countersignature, downloads.",
    "ota": "OTA campaigns: staged rollouts by percentage, halt on failures, pause, resume, cancel, rollback.",
    "apps": "Third-party apps: registration, client secrets, quotas and usage, suspension.",
    "my apps": "The apps a user granted access to, and withdrawing them.",
    "oauth": "OAuth 2.1 authorization code with PKCE, token refresh with rotation, revocation, introspection.",
    "push": "Signed webhooks per app and grant, dead letters, and the live stream (SSE) of granted devices.",
    "notifications": "The user's notifications (rules' notify actions, devices offline, homes shared), read state.",
    "security": "The fleet security audit: findings, acknowledgement and suppression, vulnerable firmware.",
}

ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorBody": {
        "type": "object", "title": "ErrorBody", "required": ["code", "message"], "additionalProperties": True,
        "properties": {
            "code": {"type": "string", "description": "stable machine code (see ecohub.errors.ErrorCode)",
                     "examples": ["invalid_input", "unknown_device", "wrong_role"]},
            "message": {"type": "string", "description": "what went wrong, for a person"},
        },
    },
    "Error": {"type": "object", "title": "Error", "required": ["error"],
              "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}}},
}
ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
WHY = {"401": "no valid credentials (missing, expired or revoked token)",
       "403": "the credentials do not allow this",
       "404": "no such resource (or the caller may not know it exists)",
       "409": "clashes with the current state (duplicate, illegal transition)",
       "422": "invalid input: a parameter or the body was refused, the message names it"}


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its function's name (stable, snake_case; `create_app` passes this to FastAPI)."""
    return route.name


def apply_conventions(app: FastAPI) -> None:
    """One tag per operation, the tags described, the error responses documented (call after every router)."""
    original = app.openapi
    done: set[int] = set()

    def openapi() -> dict[str, Any]:
        doc = original()  # FastAPI's own, cached until the routes change
        if id(doc) not in done:
            _conventions(doc)
            done.add(id(doc))
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _conventions(doc: dict[str, Any]) -> None:
    used: set[str] = set()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            # an included router's routes carry the parent router's tags first: keep the route's own (the last)
            op["tags"] = op.get("tags", [])[-1:] or ["meta"]
            used.update(op["tags"])
    doc["tags"] = [{"name": t, "description": TAGS.get(t, "")} for t in sorted(used, key=_tag_order)]
    _errors(doc)


def _tag_order(tag: str) -> tuple[int, str]:
    order = list(TAGS)
    return (order.index(tag), tag) if tag in order else (len(order), tag)


def _errors(doc: dict[str, Any]) -> None:
    """Every operation documents its 4xx with the Error body; FastAPI's own 422 shape (which the API never sends)
    is replaced."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(ERROR_SCHEMAS)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            codes = ["422"] if op.get("parameters") or op.get("requestBody") else []
            if op.get("security", doc.get("security")):
                codes += ["401", "403"]
            if "{" in path:
                codes.append("404")
            if method in ("post", "put", "patch", "delete"):
                codes.append("409")
            for code in sorted(set(codes)):
                responses[code] = {"description": WHY[code], "content": ERROR_REF}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
