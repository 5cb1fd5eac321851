"""The privacy page: consents, export and erasure, with the privacy service's own use cases (as the REST routes)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ecohub.api import i18n
from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.console.words import word
from ecohub.api.deps import ServicesDep
from ecohub.api.i18n import N_
from ecohub.api.routes.privacy import stream_file
from ecohub.auth import Principal
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError
from ecohub.privacy.domain import DsrKind, Purpose

router = APIRouter(route_class=ConsoleRoute)


# What each purpose means for the user, shown next to its control; the version is recorded with every decision.
CONSENT_TEXT_VERSION = "console-1"
CONSENT_EFFECTS: dict[str, tuple[str, str]] = {
    Purpose.DEVICE_DIAGNOSTICS_TO_MAKER.value: (
        N_("The maker of each of your devices sees its recent values (not your name, email or home) under an id "
           "that only they can use, to find faults across their products."),
        N_("Given: the maker's next read of its fleet includes your devices. Withdrawn: the very next read leaves "
           "them out; what they already read stays with them."),
    ),
    Purpose.PRODUCT_IMPROVEMENT_ANALYTICS.value: (
        N_("Lets ecohub use how you use your devices to improve products."),
        N_("Recorded in your consent ledger; no data flow uses it yet, so giving or withdrawing changes "
           "nothing today."),
    ),
}


def privacy_page(request: Request, services: Services, principal: Principal, *,
                 notice: str | None = None) -> HTMLResponse:
    """The account's facts, a consent control per purpose with its effect, export and erasure."""
    assert principal.cell is not None
    ledger = services.privacy.consents.ledger(principal.cell, principal.subject)
    consents = [{**c, "what": i18n.gettext(CONSENT_EFFECTS.get(c["purpose"], ("", ""))[0]),
                 "effect": i18n.gettext(CONSENT_EFFECTS.get(c["purpose"], ("", ""))[1])} for c in ledger["current"]]
    return render(request, "user/privacy.html", principal, profile=services.home.accounts.profile(principal),
                  consents=consents, history=list(reversed(ledger["history"]))[:20], notice=notice)


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> HTMLResponse:
    """The account's facts, its consents with controls, export and erasure."""
    return privacy_page(request, services, principal)


@router.post("/privacy/consents", response_class=HTMLResponse)
def consent(request: Request, services: ServicesDep, purpose: str = Form(...), given: bool = Form(...),
            principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Give or withdraw consent to one purpose (appended to the ledger, as POST /api/v1/privacy/consents does)."""
    assert principal.cell is not None
    services.privacy.consents.record(principal.cell, principal.subject, purpose=purpose, given=given,
                                     text_version=CONSENT_TEXT_VERSION)
    name = word(purpose)
    notice = (i18n.gettext("You gave consent to “%(purpose)s”.", purpose=name) if given
              else i18n.gettext("You withdrew consent to “%(purpose)s”.", purpose=name))
    return privacy_page(request, services, principal, notice=notice)


def _notice(message: str) -> HTMLResponse:
    return HTMLResponse(f'<p class="notice" role="status">{escape(message, quote=False)}</p>')


@router.post("/privacy/export")
def export(services: ServicesDep, password: str = Form(""), principal: Principal = Depends(user_only)) -> Response:
    """The caller's data export, streamed (the password proves identity again), or the reason it was refused."""
    assert principal.cell is not None
    dsr = services.privacy.dsr
    try:
        dsr.verify_identity(principal.cell, principal.subject, password, actor=principal.actor, kind=DsrKind.EXPORT)
        request, f = dsr.export(principal.cell, principal.subject, actor=principal.actor)
    except EcohubError as err:
        return _notice(i18n.gettext("Export refused: %(reason)s",
                                    reason=i18n.translate_known(err.message, i18n.current())))
    return StreamingResponse(stream_file(f), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="ecohub-export-{request["request_id"]}.zip"'})


@router.post("/privacy/erase")
def erase(services: ServicesDep, confirm: str = Form(""), password: str = Form(""),
          principal: Principal = Depends(user_only)) -> Response:
    """Erase the account (needs the word ERASE typed in and the password)."""
    if confirm.strip() != "ERASE":
        return HTMLResponse(f'<p class="error" role="alert">{escape(i18n.gettext("Type ERASE to confirm."))}</p>')
    assert principal.cell is not None
    dsr = services.privacy.dsr
    try:
        dsr.verify_identity(principal.cell, principal.subject, password, actor=principal.actor, kind=DsrKind.ERASURE)
        receipt = dsr.erase(principal.cell, principal.subject, actor=principal.actor)
    except EcohubError as err:
        return _notice(i18n.gettext("Erasure refused: %(reason)s",
                                    reason=i18n.translate_known(err.message, i18n.current())))
    return _notice(i18n.gettext("Erasure request %(id)s is %(status)s (due %(due)s).", id=receipt["request_id"],
                                status=receipt["status"], due=i18n.iso_date(receipt["due"])))
