"""The web console: server-rendered pages (Jinja2 + HTMX) under /console, served by the API's own app."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecohub.api import i18n
from ecohub.api.console.live import LiveHub
from ecohub.bootstrap import Services

STATIC = Path(__file__).resolve().parent.parent / "static"
SWAGGER = "/console/static/vendor/swagger-ui"


def manifest() -> dict[str, Any]:
    """The web app manifest: the console installs as an app that opens on its home page."""
    return {
        "name": "ecohub console", "short_name": "ecohub", "start_url": "/console/", "scope": "/console/",
        "display": "standalone", "background_color": "#f5f7fa", "theme_color": "#14263a",
        "lang": i18n.html_lang(), "description": i18n.gettext("Your homes, devices and ecosystem."),
        "icons": [{"src": "/console/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
                  {"src": "/console/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
                  {"src": "/console/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png",
                   "purpose": "maskable"},
                  {"src": "/console/static/icons/favicon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }


def mount_console(app: FastAPI, services: Services) -> None:
    """Add the console routes, its static files and the live-update hub to the app."""
    from ecohub.api.console import apps, auth, automations, ecosystem, extras, fleet, homes, ota, partner, security
    from ecohub.api.console.common import page, request_locale, session_principal

    app.state.console_live = LiveHub(services.bus)
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
    for module in (auth, ecosystem, fleet, partner, homes, extras, automations, security, ota, apps):
        app.include_router(module.router, prefix="/console", include_in_schema=False)

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.get("/console/manifest.webmanifest", include_in_schema=False)
    def web_manifest(request: Request) -> JSONResponse:
        token = i18n.activate(request_locale(request))
        try:
            return JSONResponse(manifest(), media_type="application/manifest+json")
        finally:
            i18n.deactivate(token)

    @app.get("/console/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        # served from /console/ (not /console/static/) so that its scope may be the whole console
        return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "icons" / "icon-192.png", media_type="image/png")

    # the endpoints below read the app from the request, never from this function's scope: FastAPI caches endpoint
    # callables process-wide, and a closure over `app` or `services` kept every hub alive after it stopped
    @app.get("/api/v1/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI from the hub's own vendored copy: the API docs work with no network."""
        return get_swagger_ui_html(openapi_url=request.app.openapi_url or "/api/v1/openapi.json", title="ecohub API",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url="/console/static/icons/favicon.svg",
                                   swagger_ui_parameters={"validatorUrl": None})

    api_not_found = app.exception_handlers.get(StarletteHTTPException)

    async def not_found(request: Request, err: Exception) -> Response:
        """A console page that does not exist: the 404 page with the navigation; the API keeps its JSON errors."""
        path = request.url.path
        if (isinstance(err, StarletteHTTPException) and err.status_code == 404
                and (path.startswith("/console") or path == "/") and request.method == "GET"):
            token = i18n.activate(request_locale(request))
            try:
                try:
                    principal = session_principal(request, request.app.state.services)
                except Exception:  # no session, or an expired one: the page without the signed-in menu
                    principal = None
                return page(request, "not_found.html", principal, status_code=404, path=path)
            finally:
                i18n.deactivate(token)
        if api_not_found is None:
            raise err
        answer = api_not_found(request, err)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, not_found)
