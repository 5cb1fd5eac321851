"""Notifications ecohub words itself are stored as a code with parameters and read in each reader's language: the
API's Accept-Language, else the account's language; the console's language; the push to apps in the account's
language with the code and params. Rows from before codes (text only) and a rule's own words stay as stored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from ecohub.api import i18n
from ecohub.bootstrap import Services
from ecohub.locales import LANGUAGES
from ecohub.notify.events import NotificationCreated
from ecohub.notify.messages import MESSAGES, WORDS, render
from ecohub.notify.models import Notification
from tests.home.conftest import signup


def _share(client: TestClient, services: Services) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ann shares her home "Casa Ana" with Bob as a member: both are told."""
    ann, bob = signup(client, "ann@example.org"), signup(client, "bob@example.org")
    home = client.post("/api/v1/homes", json={"name": "Casa Ana"}, headers=ann["headers"]).json()["home_id"]
    r = client.post(f"/api/v1/homes/{home}/members", json={"email": "bob@example.org", "role": "member"},
                    headers=ann["headers"])
    assert r.status_code == 201, r.text
    return ann, bob


def _mine(client: TestClient, who: dict[str, Any], **headers: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/me/notifications", headers={**who["headers"], **headers})
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_share_is_stored_as_a_code_and_read_in_the_readers_language(client: TestClient,
                                                                        services: Services) -> None:
    _ann, bob = _share(client, services)
    [english] = _mine(client, bob)
    assert (english["code"], english["params"]) == ("share.received", {"role": "member", "home": "Casa Ana"})
    assert english["title"] == "A home was shared with you" and english["body"] == "Your role in Casa Ana: member."
    [german] = _mine(client, bob, **{"Accept-Language": "de-DE,de;q=0.9"})
    assert german["title"] == "Ein Zuhause wurde mit Ihnen geteilt" and "Mitglied" in german["body"]
    assert "Casa Ana" in german["body"] and german["id"] == english["id"]
    [spanish] = _mine(client, bob, **{"Accept-Language": "es"})
    assert "miembro" in spanish["body"] and spanish["title"] != english["title"]
    # no Accept-Language: the account's language
    services.home.accounts.set_locale(services.home.accounts.authenticate(bob["token"]), "zh_Hans")
    [chinese] = _mine(client, bob)
    assert "成员" in chinese["body"] and "Casa Ana" in chinese["body"]
    read = client.post(f"/api/v1/me/notifications/{chinese['id']}:read", headers=bob["headers"]).json()
    assert read["title"] == chinese["title"] and read["read"] is True


def test_the_console_words_notifications_in_its_language(client: TestClient, services: Services) -> None:
    _ann, bob = _share(client, services)
    client.cookies.set("ecohub_console", bob["token"], path="/console")
    client.cookies.set(i18n.COOKIE, "de", path="/")
    items = client.get("/console/notifications.json").json()["items"]
    assert [n["title"] for n in items] == ["Ein Zuhause wurde mit Ihnen geteilt"]


def test_the_push_to_apps_carries_code_params_and_the_users_language(client: TestClient,
                                                                     services: Services) -> None:
    heard: list[NotificationCreated] = []
    services.bus.subscribe(NotificationCreated, heard.append)
    ann = signup(client, "ann@example.org")
    services.home.accounts.set_locale(services.home.accounts.authenticate(ann["token"]), "de")
    signup(client, "bob@example.org")
    home = client.post("/api/v1/homes", json={"name": "Casa"}, headers=ann["headers"]).json()["home_id"]
    client.post(f"/api/v1/homes/{home}/members", json={"email": "bob@example.org", "role": "guest"},
                headers=ann["headers"])
    to_ann = next(e for e in heard if e.user_id == ann["user_id"])
    assert to_ann.locale == "de" and to_ann.localized is not None
    assert to_ann.localized["code"] == "share.granted" and to_ann.localized["params"]["role"] == "guest"
    assert to_ann.localized["title"] == "Zuhause geteilt" and "Gast" in to_ann.localized["body"]
    assert to_ann.notification["title"] == "Home shared"  # what is stored: English


def test_old_rows_and_a_rules_own_words_stay_as_stored(client: TestClient, services: Services) -> None:
    ann, bob = _share(client, services)
    with services.dbs.cell_session("eu") as s:  # a row from before codes: its text only
        s.execute(update(Notification).values(code=None, params=None))
    [old] = _mine(client, bob, **{"Accept-Language": "de"})
    assert old["title"] == "A home was shared with you" and old["code"] is None
    services.notifications.notify("eu", [ann["user_id"]], kind="automation", title="Leck", body="Wasser im Keller")
    free = [n for n in _mine(client, ann, **{"Accept-Language": "zh-CN"}) if n["kind"] == "automation"]
    assert [(n["title"], n["body"], n["code"]) for n in free] == [("Leck", "Wasser im Keller", None)]


def test_every_message_and_word_is_translated_with_its_placeholders() -> None:
    params = {"home": "H", "role": "member", "device": "D"}
    for locale in LANGUAGES:
        tr = i18n.translations(locale)
        for code, (title, body) in MESSAGES.items():
            worded = render(code, params, tr.ugettext)
            assert worded is not None
            if locale != "en":
                assert worded[0] != title and worded[1] != body % params, (locale, code)
            assert all(v in worded[1] for k, v in params.items() if f"%({k})s" in body and k not in WORDS), code
        for words in WORDS.values():
            assert all(locale == "en" or tr.ugettext(w) != w for w in words.values()), locale
