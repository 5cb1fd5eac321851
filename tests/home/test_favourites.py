"""Favourites belong to the account: marked in one browser (or by an app through the API), shown first on the home
page in every other; only devices the user may see; an older console's cookie favourites are taken over; exported
with the user's data, gone with the account; cell migration 0020 matches the model."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from ecohub.api.app import create_app
from ecohub.bootstrap import Services
from tests.automate.conftest import Home, make_home
from tests.home.conftest import PASSWORD, signup
from tests.migrations import PG, pg_databases, roundtrip


def _browser(services: Services, email: str) -> TestClient:
    """Another browser (its own cookie jar) signed in to the console."""
    c = TestClient(create_app(services))
    own = str(c.base_url).rstrip("/")
    c.headers.update({"Origin": own, "Sec-Fetch-Site": "same-origin"})
    r = c.post("/console/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def _favourites_section(page: str) -> str:
    """The home page's favourites section ('' when there is none)."""
    start = page.find('id="room-favourites"')
    return page[start:page.find("</section>", start)] if start >= 0 else ""


@pytest.fixture
def home(client: TestClient, services: Services) -> Home:
    return make_home(client, services)


def test_a_favourite_marked_in_one_browser_shows_in_another_and_in_the_api(client: TestClient,
                                                                           services: Services, home: Home) -> None:
    laptop, phone = _browser(services, "ann@example.org"), _browser(services, "ann@example.org")
    r = laptop.post(f"/console/devices/{home.plug.did}/favourite", data={"on": "true"}, follow_redirects=False)
    assert r.status_code == 303 and "ecohub_favs=" not in r.headers.get("set-cookie", "")
    section = _favourites_section(phone.get(f"/console/homes/{home.home_id}").text)
    assert f'id="card-{home.plug.did}"' in section and f'id="card-{home.sensor.did}"' not in section
    assert client.get("/api/v1/me/favourites", headers=home.headers).json() == [home.plug.did]
    # an app marks the sensor through the API: the console shows both; marking again changes nothing
    for _ in range(2):
        assert client.put(f"/api/v1/me/favourites/{home.sensor.did}", headers=home.headers).status_code == 204
    assert client.get("/api/v1/me/favourites", headers=home.headers).json() == [home.plug.did, home.sensor.did]
    assert f'id="card-{home.sensor.did}"' in _favourites_section(laptop.get(f"/console/homes/{home.home_id}").text)
    # unmarked in the phone's browser: gone everywhere
    phone.post(f"/console/devices/{home.plug.did}/favourite", data={"on": "false"})
    assert client.delete(f"/api/v1/me/favourites/{home.sensor.did}", headers=home.headers).status_code == 204
    assert client.get("/api/v1/me/favourites", headers=home.headers).json() == []
    assert _favourites_section(laptop.get(f"/console/homes/{home.home_id}").text) == ""


def test_only_devices_the_user_may_see(client: TestClient, services: Services, home: Home) -> None:
    bob = signup(client, "bob@example.org")
    r = client.put(f"/api/v1/me/favourites/{home.plug.did}", headers=bob["headers"])
    assert r.status_code in (403, 404) and "error" in r.json()
    assert client.get("/api/v1/me/favourites", headers=bob["headers"]).json() == []
    op = {"Authorization": f"Bearer {services.tokens.create(role='operator')['token']}"}
    assert client.get("/api/v1/me/favourites", headers=op).status_code == 403
    # a favourite of a device that leaves the home drops out of the list
    client.put(f"/api/v1/me/favourites/{home.plug.did}", headers=home.headers)
    r = client.delete(f"/api/v1/homes/{home.home_id}/devices/{home.plug.did}", headers=home.headers)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/me/favourites", headers=home.headers).json() == []


def test_an_older_browsers_cookie_favourites_are_taken_over(services: Services, home: Home) -> None:
    browser = _browser(services, "ann@example.org")
    browser.cookies.set("ecohub_favs", f"{home.sensor.did}.not-mine-1", path="/console")
    page = browser.get(f"/console/homes/{home.home_id}")
    assert f'id="card-{home.sensor.did}"' in _favourites_section(page.text)
    assert 'ecohub_favs=""' in page.headers.get("set-cookie", "")  # the cookie is dropped once adopted
    account = services.home.accounts.authenticate(home.headers["Authorization"].removeprefix("Bearer "))
    assert services.home.favourites.list(account) == [home.sensor.did]


def test_favourites_are_exported_and_erased_with_the_account(client: TestClient, services: Services,
                                                             home: Home) -> None:
    client.put(f"/api/v1/me/favourites/{home.plug.did}", headers=home.headers)
    pw = {**home.headers, "X-Password": PASSWORD}
    r = client.get("/api/v1/privacy/export", headers=pw)
    assert r.status_code == 200, r.text
    exported = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("favourites.json"))
    assert [f["did"] for f in exported] == [home.plug.did]
    user_id = services.home.accounts.authenticate(home.headers["Authorization"].removeprefix("Bearer ")).subject
    assert client.request("DELETE", "/api/v1/privacy/me", headers=pw).status_code == 202
    with services.dbs.cell_session("eu") as s:
        assert s.execute(text("SELECT count(*) FROM favourites WHERE user_id = :u"), {"u": user_id}).scalar() == 0


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    roundtrip(engine, {"favourites"}, down_to="0019", kept=frozenset({"users", "notifications"}))
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    with pg_databases("ecohub_favourites", ("cell",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        roundtrip(engine, {"favourites"}, down_to="0019", kept=frozenset({"users", "notifications"}))
        engine.dispose()
