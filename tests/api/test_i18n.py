"""Languages: complete catalogues, the request's locale, per-locale formats, translated pages and API messages."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ecohub.api import i18n
from ecohub.bootstrap import Services
from ecohub.spec import parse_spec
from ecohub.spec.labels import spec_labels, unit_symbol, words
from tests.conftest import load_spec

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "i18n.py"


def _catalogues() -> object:
    spec = importlib.util.spec_from_file_location("i18n_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_catalogue_is_complete_compiled_and_matches_the_sources() -> None:
    # messages.pot holds every id in the templates and code; de, zh_Hans and es translate each; the .mo are fresh
    assert _catalogues().problems() == []  # type: ignore[attr-defined]


def test_the_check_finds_template_text_outside_gettext(tmp_path: Path) -> None:
    # a sentence or a label left in English in a template is reported; wrapped text, code and the brand are not
    (tmp_path / "page.html").write_text(
        '<h1>{{ _("Devices") }}</h1><p>No devices yet: <code>ecohub device provision</code></p>\n'
        '<input placeholder="Search" name="q"><a class="brand" href="/">eco<b>hub</b></a>{# a note #}')
    module: Any = _catalogues()
    module.TEMPLATES = tmp_path
    assert module.unwrapped() == ["page.html: text outside gettext: 'Search'",
                                  "page.html: text outside gettext: 'No devices yet:'"]


@pytest.mark.parametrize(("header", "expected"), [
    ("de-AT,de;q=0.9,en;q=0.8", "de"), ("zh-CN,zh;q=0.9", "zh_Hans"), ("zh-TW", "en"), ("fr-FR, es;q=0.5", "es"),
    ("en;q=0.1, de;q=0.9", "de"), ("", "en"), ("*", "en"), ("es-419", "es"),
])
def test_the_browser_language_picks_the_closest_catalogue(header: str, expected: str) -> None:
    assert i18n.choose(accept_language=header) == expected


def test_an_explicit_choice_wins_over_the_browser() -> None:
    assert i18n.choose(cookie="zh_Hans", accept_language="de") == "zh_Hans"
    assert i18n.choose(cookie="klingon", accept_language="de") == "de"


@pytest.mark.parametrize(("locale", "price", "number"), [
    ("de", "809.983,99\xa0NGN", "12.345,5"), ("es", "809.983,99\xa0NGN", "12.345,5"),
    ("en", "NGN\xa0809,983.99", "12,345.5"), ("zh_Hans", "NGN\xa0809,983.99", "12,345.5"),
])
def test_prices_and_numbers_are_written_the_locale_s_way(locale: str, price: str, number: str) -> None:
    token = i18n.activate(locale)
    try:
        assert i18n.price("809983.99", "NGN") == price
        assert i18n.number(12345.5) == number
        assert i18n.iso_date("2026-03-01")  # a date in words, never the raw ISO text
        assert i18n.iso_date("2026-03-01") != "2026-03-01" or locale == "zh_Hans"
    finally:
        i18n.deactivate(token)


@pytest.mark.parametrize(("locale", "germany", "iceland"), [
    ("de", "Deutschland", "Island"), ("zh_Hans", "德国", "冰岛"), ("es", "Alemania", "Islandia"),
    ("en", "Germany", "Iceland"),
])
def test_market_countries_are_named_in_the_locale(locale: str, germany: str, iceland: str) -> None:
    token = i18n.activate(locale)
    try:
        assert (i18n.country("DE"), i18n.country("is", "Iceland")) == (germany, iceland)
        assert i18n.country("XQ", "Atlantis") == "Atlantis"  # no CLDR name: the market's own
    finally:
        i18n.deactivate(token)


def test_spec_labels_are_words_grouped_by_service_with_unit_symbols() -> None:
    labels = spec_labels(parse_spec(load_spec("cuco.plug.v3")))
    assert labels["2.1"]["label"] == "On" and labels["2.1"]["service"] == "Switch"
    assert {labels[k]["service"] for k in labels if labels[k]["label"] == "On"} >= {"Switch", "Indicator light"}
    assert unit_symbol("percentage") == "%" and unit_symbol("celsius") == "°C" and unit_symbol("watt") == "W"
    assert words("in_development") == "In development" and words("pm2.5-density") == "PM2.5 density"


def test_pages_are_translated_with_lang_set(client: TestClient) -> None:
    r = client.get("/console/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in r.text and "Anmelden" in r.text and "Sign in" not in r.text
    r = client.get("/console/login", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="zh-Hans">' in r.text and "登录" in r.text
    # the switcher's choice is a cookie that wins over the browser
    r = client.post("/console/language", data={"lang": "es", "next": "/console/login"},
                    headers={"Accept-Language": "de"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    r = client.get("/console/login", headers={"Accept-Language": "de"})
    assert '<html lang="es">' in r.text and "Iniciar sesión" in r.text


def test_a_user_s_language_is_kept_on_the_account(client: TestClient, services: Services) -> None:
    services.home.accounts.signup(email="lin@example.org", password="correct horse battery", country="DE")
    r = client.post("/console/login", data={"email": "lin@example.org", "password": "correct horse battery"},
                    follow_redirects=False)
    client.post("/console/language", data={"lang": "zh_Hans", "next": "/console/homes"}, follow_redirects=False)
    token = r.cookies.get("ecohub_console") or client.cookies.get("ecohub_console")
    assert services.home.accounts.profile(services.home.accounts.authenticate(token))["locale"] == "zh_Hans"
    # a new browser (no language cookie) gets the account's language at sign-in
    client.cookies.clear()
    r = client.post("/console/login", data={"email": "lin@example.org", "password": "correct horse battery"},
                    follow_redirects=False)
    assert r.cookies.get("ecohub_lang") == "zh_Hans"


def test_api_error_messages_follow_accept_language_and_keep_their_code(client: TestClient) -> None:
    r = client.get("/api/v1/me/devices", headers={"Authorization": "Bearer eht_nope", "Accept-Language": "de"})
    assert r.status_code == 401
    assert r.json()["error"] == {"code": "invalid_token", "message": "unbekanntes Token"}
    r = client.get("/api/v1/me/devices", headers={"Authorization": "Bearer eht_nope"})
    assert r.json()["error"]["message"] == "unknown token"


def test_an_unknown_console_page_is_a_404_page_with_navigation(client: TestClient) -> None:
    r = client.get("/console/no-such-page", headers={"Accept-Language": "de"})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "Seite nicht gefunden" in r.text and 'href="/console/"' in r.text
    assert client.get("/api/v1/no-such-route").json()["error"]["code"] == "not_found"  # the API keeps JSON
