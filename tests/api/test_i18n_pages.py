"""Every console page, rendered in German for the operator, a partner and a user with data on each page, shows no
English: no English function word or console phrase in its visible text or its labels (title, placeholder,
aria-label, alt). Data stays as it is — names people gave, ids, model ids, market codes, commands in <code>, a spec's
own descriptions (marked translate="no") — so the test's own data is German or neutral and those are left out."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from ecohub.api.app import create_app
from ecohub.api.i18n import COOKIE as LANG_COOKIE
from ecohub.bootstrap import Services
from tests.apps.conftest import REDIRECT, pkce
from tests.automate.conftest import make_home
from tests.certify.conftest import record_evidence
from tests.certify.test_api import MODEL, _report
from tests.conftest import load_spec
from tests.helpers import DEFINITION, approve_design
from tests.home.conftest import signup
from tests.ota.conftest import Vendor, vendor_for  # noqa: F401  (a fixture: an OTA partner with images)

# Words of English sentences and labels that have no business on a German page (lower case: whole words; German
# shares "in", "so", "was", "will", "an", "man", "Status", "Version", "Design", "Name" with English, so those are
# not listed). One of them on a page is a string that escaped the catalogue.
ENGLISH = frozenset({
    "the", "and", "your", "you", "with", "yet", "of", "to", "not", "is", "are", "this", "that", "by", "from", "has",
    "have", "been", "there", "here", "nothing", "every", "none", "any", "all", "these", "those", "which", "what",
    "when", "where", "why", "how", "should", "could", "would", "must", "devices", "password", "campaign",
    "campaigns", "created", "allow", "deny", "approve", "reject", "reset", "send", "findings", "price", "listings",
    "save", "delete", "edit", "rooms", "room", "homes", "search", "share", "shared", "sharing", "settings", "sign",
    "signed", "failed", "pending", "running", "paused", "cancelled", "completed", "waiting",
    "enable", "disable", "enabled", "disabled"
})
PHRASES = ("No ", "Add ", "Show ", "Sign in", "Sign out", " yet", "Last seen", "Up to")
_CODE = re.compile(r'<(code|pre|kbd|samp|script|style|template)\b.*?</\1>|<(span)\b[^>]*translate="no"[^>]*>.*?</\2>',
                   re.S | re.I)
_LABELS = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")


def visible_text(page: str) -> str:
    """What a reader sees or hears of a page: text nodes and labelling attributes, without code and scripts."""
    body = _CODE.sub(" ", page)
    labels = " ".join(_LABELS.findall(body))
    return html.unescape(_TAG.sub(" ", body) + " " + labels)


def english_in(text: str, data: frozenset[str]) -> list[str]:
    """The English words and phrases in `text` (`data`: words of this test's own data, allowed)."""
    found = [w for w in re.findall(r"[A-Za-z]+", text)
             if w.lower() in ENGLISH and w not in data and not (w.isupper() and len(w) <= 3)]  # IS: Iceland
    found += [p.strip() for p in PHRASES if p in text]
    return sorted(set(found))


@pytest.fixture
def web(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://127.0.0.1") as c:  # OAuth wants loopback for http
        yield c


def _operator_pages(services: Services, vendor: Vendor) -> list[str]:
    services.ecosystem.partners.add(name="Acme Robotik", partner_id="acme", country="DE", founded_on="2015-01-01",
                                    actor="test")
    services.products.import_spec(load_spec("cuco.plug.v3"), model=MODEL, actor="test", partner_id="acme",
                                  **DEFINITION)
    record_evidence(services, MODEL, ["DE"])
    _report(services)
    approve_design(services, MODEL)
    vendor.provision(2)
    vendor.image("2.0.0")
    campaign = services.campaigns.create(model=vendor.model, version="2.0.0", stages=[50, 100], threshold=5)
    did = services.devices.provision(model=MODEL, cell="eu")[0].did
    services.security.service.audit()
    return ["/console/", "/console/partners", "/console/partners/acme", "/console/products",
            f"/console/products/{MODEL}", "/console/markets", "/console/listings", "/console/fleet",
            f"/console/fleet/devices/{did}", "/console/ota", f"/console/ota/{campaign['campaign_id']}",
            "/console/security", "/console/no-such-page"]


def _user_pages(web: TestClient, services: Services) -> tuple[list[str], str]:
    home = make_home(web, services, "anna@example.org")
    rule = {"name": "Zu warm: Stecker an",
            "triggers": [{"type": "property", "did": home.sensor.did, "prop": "temperature", "op": ">", "value": 26}],
            "actions": [{"type": "set", "did": home.plug.did, "values": {"switch.on": True}}]}
    r = web.post(f"/api/v1/homes/{home.home_id}/automations", json=rule, headers=home.headers)
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]
    web.put(f"/api/v1/me/favourites/{home.plug.did}", headers=home.headers)
    signup(web, "bernd@example.org")
    web.post(f"/api/v1/homes/{home.home_id}/members", json={"email": "bernd@example.org", "role": "guest"},
             headers=home.headers)
    op = {"Authorization": f"Bearer {services.tokens.create(role='operator')['token']}"}
    app = web.post("/api/v1/apps", headers=op, json={"name": "Energieanzeige", "redirect_uris": [REDIRECT],
                                                      "scopes": ["devices:read", "homes:read"]}).json()
    _, challenge = pkce()
    consent = web.get("/api/v1/oauth/authorize", follow_redirects=False, params={
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
        "scope": "devices:read homes:read", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256"}).headers["location"]
    pages = [f"/console/homes/{home.home_id}", f"/console/homes/{home.home_id}/sharing",
             f"/console/devices/{home.plug.did}", f"/console/devices/{home.sensor.did}",
             f"/console/automations?home={home.home_id}", f"/console/automations/{rule_id}/runs",
             "/console/privacy", "/console/apps", "/console/password", consent]
    return pages, home.headers["Authorization"].removeprefix("Bearer ")


def _check(web: TestClient, token: str | None, pages: list[str], data: frozenset[str]) -> dict[str, list[str]]:
    web.cookies.clear()
    if token:
        web.cookies.set("ecohub_console", token, path="/console")
    web.cookies.set(LANG_COOKIE, "de", path="/")
    leaks: dict[str, list[str]] = {}
    for url in pages:
        r = web.get(url, follow_redirects=False)
        assert r.status_code in (200, 404), (url, r.status_code, r.text[:300])
        assert '<html lang="de">' in r.text or "<html" not in r.text, url  # a fragment has no <html>
        found = english_in(visible_text(r.text), data)
        if found:
            leaks[url] = found
    return leaks


def test_every_console_page_in_german_shows_no_english(web: TestClient, services: Services,
                                                        vendor_for: Callable[[], Vendor]) -> None:  # noqa: F811
    data = frozenset({"Acme", "Robotik", "TÜV", "Lab", "Test"})
    operator = services.tokens.create(role="operator")["token"]
    leaks = _check(web, operator, _operator_pages(services, vendor_for()), data)
    partner = services.tokens.create(role="partner", partner_id="acme")["token"]
    leaks |= _check(web, partner, ["/console/partner", f"/console/partner/products/{MODEL}"], data)
    user_pages, user = _user_pages(web, services)
    leaks |= _check(web, user, user_pages, data)
    leaks |= _check(web, None, ["/console/login", "/console/password-reset"], data)
    assert leaks == {}, "\n".join(f"{u}: {w}" for u, w in leaks.items())


def test_the_check_finds_an_english_string() -> None:
    """Not vacuous: an unwrapped sentence or label is caught, German text, data and code are not."""
    page = ('<h1>Geräte</h1><p>No campaign yet: <code>ecohub ota campaign create</code></p>'
            '<input placeholder="Search devices"><span title="Acme Robotik">Stecker</span>')
    assert english_in(visible_text(page), frozenset({"Acme"})) == ["No", "Search", "campaign", "devices", "yet"]
    assert english_in(visible_text("<p>Noch keine Kampagne: <code>ecohub ota</code></p>"), frozenset()) == []

