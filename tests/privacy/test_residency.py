"""Residency: canary users per cell; the report is clean, then finds planted leaks in another cell and globally."""

from __future__ import annotations

import json

from sqlalchemy import text
from typer.testing import CliRunner

from ecohub.bootstrap import Services
from ecohub.cli.app import app


def test_report_is_clean_then_finds_planted_leaks(services: Services) -> None:
    accounts = services.home.accounts
    eu = accounts.signup(email="canary.eu@example.org", password="correct horse battery", country="DE")
    us = accounts.signup(email="canary.us@example.org", password="correct horse battery", country="US")
    assert (eu["cell"], us["cell"]) == ("eu", "us")
    report = services.privacy.residency.report()
    assert report["ok"], report["findings"]
    assert report["subjects"]["eu"]["users"] == 1 and report["subjects"]["us"]["users"] == 1

    with services.dbs.cell_session("us") as s:  # the eu canary's email lands in the us cell
        s.execute(text("insert into dead_letters (topic, code, reason, payload, size, received_ms) "
                       "values ('x', 'bad', 'from CANARY.EU@example.org', x'00', 1, 0)"))
    with services.dbs.global_session() as s:  # and the us canary's user id in the global plane
        s.execute(text("insert into categories (slug, name, family) values (:slug, 'x', 'x')"),
                  {"slug": f"c-{us['user_id']}"})
    report = services.privacy.residency.report()
    found = {(f["store"], f["table"], f["column"], f["subject_cell"], f["kind"], f["subject"])
             for f in report["findings"]}
    assert found == {("us", "dead_letters", "reason", "eu", "email", eu["user_id"]),
                     ("global_plane", "categories", "slug", "us", "user id", us["user_id"])}
    assert "canary" not in json.dumps(report).lower()  # the report names ids, never the leaked email

    result = CliRunner().invoke(app, ["residency", "report", "--json", "--data-dir", str(services.settings.data_dir)])
    assert result.exit_code == 1 and len(json.loads(result.stdout)["findings"]) == 2
