"""The registry CLI: listing commands take --json; errors exit with the error's code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ecohub.cli.app import app

runner = CliRunner()


def test_partner_round_market_and_kpi_commands(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    r = runner.invoke(app, ["partner", "add", "Acme Labs", "--country", "DE", "--founded", "2015-01-01", *d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["round", "add", "acme-labs", "--series", "seed", "--date", "2016-01-01",
                            "--pre-money", "1000000", "--raised", "1000000", "--brand", "1000000", "--json", *d])
    assert r.exit_code == 5 and json.loads(r.stdout.splitlines()[0])["error"]["code"] == "minority_rule"
    r = runner.invoke(app, ["round", "add", "acme-labs", "--series", "seed", "--date", "2016-01-01",
                            "--pre-money", "4000000", "--raised", "1000000", "--brand", "500000", "--json", *d])
    assert r.exit_code == 0 and json.loads(r.stdout)["brand_stake_percent"] == "10.0000"
    partners = json.loads(runner.invoke(app, ["partner", "list", "--json", *d]).stdout)
    assert [p["id"] for p in partners] == ["acme-labs"]
    markets = json.loads(runner.invoke(app, ["market", "list", "--json", *d]).stdout)
    assert len(markets) >= 85
    assert json.loads(runner.invoke(app, ["product", "list", "--json", *d]).stdout) == []
    kpi = json.loads(runner.invoke(app, ["kpi", "--json", *d]).stdout)
    assert kpi["partners_by_stage"] == {"seed": 1}
    r = runner.invoke(app, ["listing", "add", "nope.plug.v1", "DE", "--price", "1", *d])
    assert r.exit_code == 3
