"""The console's Content-Security-Policy (shared by the app's header middleware and the consent page)."""

from __future__ import annotations

# the console's pages: scripts and styles only from the hub itself (vendored), no framing, forms to itself only
CONSOLE_CSP = (b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               b"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")


def console_csp_for(origin: str) -> str:
    """The console's CSP with one more origin forms may lead to (the consent form redirects to the app)."""
    return CONSOLE_CSP.decode().replace("form-action 'self'", f"form-action 'self' {origin}")
