"""The web console: server-rendered pages (Jinja2 + HTMX) under /console, served by the API's own app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from ecohub.api.console.live import LiveHub
from ecohub.bootstrap import Services

STATIC = Path(__file__).resolve().parent.parent / "static"


def mount_console(app: FastAPI, services: Services) -> None:
    """Add the console routes, its static files and the live-update hub to the app."""
    from ecohub.api.console import apps, auth, ecosystem, extras, fleet, homes, partner

    app.state.console_live = LiveHub(services.bus)
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    for module in (auth, ecosystem, fleet, partner, homes, extras, apps):
        app.include_router(module.router, prefix="/console", include_in_schema=False)

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)
