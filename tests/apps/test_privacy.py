"""App grants are the user's personal data: the export contains them (without token hashes) and erasure removes
them with everything that hangs off them."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import func, select

from ecohub.apps.models import AppGrant, AppGrantDevice, AppToken, AuthCode
from tests.apps.conftest import World
from tests.home.conftest import PASSWORD, bearer

PW = {"X-Password": PASSWORD}


def test_export_holds_the_grants_and_erasure_removes_them(world: World) -> None:
    world.console_login()
    token = world.tokens([world.dids[0]])
    r = world.http.get("/api/v1/privacy/export", headers={**world.user["headers"], **PW})
    assert r.status_code == 200, r.text[:300]
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    grants = [n for n in names if "app_grants" in n and "devices" not in n]
    assert grants and any("app_tokens" in n for n in names)
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    tokens_text = zf.read(next(n for n in names if "app_tokens" in n)).decode()
    assert "not exported" in tokens_text or tokens_text.strip() in ("", "[]")
    assert world.app["client_id"] in zf.read(grants[0]).decode()
    r = world.http.delete("/api/v1/privacy/me", headers={**world.user["headers"], **PW})
    assert r.status_code == 202, r.text
    with world.services.dbs.cell_session(world.user["cell"]) as s:
        for model in (AppGrant, AppGrantDevice, AppToken, AuthCode):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__tablename__
    assert world.http.get("/api/v1/me/devices", headers=bearer(token["access_token"])).status_code == 401
