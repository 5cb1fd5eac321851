"""Rollups: an hour's and a day's aggregates equal the aggregate over the raw rows; long reads answer from them."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ecohub.bootstrap import Services
from ecohub.telemetry.domain import DAY, HOUR, Stats, bucket_start
from ecohub.telemetry.models import Rollup
from ecohub.telemetry.rollup import rollup_aad
from tests.telemetry.conftest import write

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
NOW = T0 + 10 * DAY
_dids = itertools.count()

values = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
                   st.booleans())
samples = st.lists(st.tuples(st.integers(0, 3 * DAY - 1), values), min_size=1, max_size=60)


def stored(services: Services, did: str, res: int) -> dict[int, dict[str, Any]]:
    with services.dbs.cell_session("eu") as s:
        opener = services.sealer.opener(s, "eu")
        out = {}
        for r in s.scalars(select(Rollup).where(Rollup.did == did, Rollup.res == res)):
            ok, value = opener.value(r.stats, r.subject, r.sealed, rollup_aad(did, r.key, res, r.bucket))
            assert ok
            out[r.bucket] = value
        return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=samples, late=samples)
def test_rollup_equals_the_aggregate_over_raw_rows(services: Services, first: list[tuple[int, Any]],
                                                   late: list[tuple[int, Any]]) -> None:
    did = f"eu-prop{next(_dids)}"
    write(services, did, "2.1", [(T0 + t, v) for t, v in first])
    services.telemetry.maintain(now_ms=NOW, prune=False)
    write(services, did, "2.1", [(T0 + t, v) for t, v in late])  # a second batch, partly into rolled-up hours
    services.telemetry.maintain(now_ms=NOW, prune=False)
    rows = [(T0 + t, v) for t, v in first + late]
    for res in (HOUR, DAY):
        want: dict[int, Stats] = defaultdict(Stats)
        for ts, v in rows:
            want[bucket_start(ts, res)].add(ts, v)
        got = stored(services, did, res)
        assert set(got) == set(want)
        for b, st_ in want.items():
            g, w = got[b], st_.to_dict()
            assert (g["count"], g["min"], g["max"], g["first_ts"], g["last_ts"]) == (
                w["count"], w["min"], w["max"], w["first_ts"], w["last_ts"])
            assert abs(g["sum"] - w["sum"]) <= 1e-6 * max(1.0, abs(w["sum"]))
            # first/last: the value at the first/last time (several samples may share a time)
            assert g["first"] in [v for ts, v in rows if ts == w["first_ts"]]
            assert g["last"] in [v for ts, v in rows if ts == w["last_ts"]]


def test_a_year_answers_from_daily_rollups(client: TestClient, services: Services, plug: str,
                                           op: dict[str, str]) -> None:
    start = T0 - 364 * DAY
    write(services, plug, "11.2", [(start + i * HOUR, float(i % 24)) for i in range(365 * 24)])  # hourly, a year
    services.telemetry.maintain(now_ms=T0 + DAY, prune=False)
    r = client.get(f"/api/v1/devices/{plug}/telemetry", headers=op,
                   params={"key": "11.2", "since": start, "until": T0 + DAY - 1, "bucket": "1d", "agg": "avg"})
    body = r.json()
    assert r.status_code == 200, r.text
    assert body["source"] == "rollup" and len(body["points"]) == 365
    assert all(p["value"] == 11.5 and p["count"] == 24 for p in body["points"])
    # sub-hour buckets read the raw rows: the same numbers
    raw = client.get(f"/api/v1/devices/{plug}/telemetry", headers=op,
                     params={"key": "11.2", "since": T0 - 9 * DAY, "until": T0 + DAY - 1, "bucket": "30m",
                             "agg": "max"}).json()
    assert raw["source"] == "raw" and {p["value"] for p in raw["points"]} == set(map(float, range(24)))


def test_samples_not_yet_rolled_up_are_read_raw(client: TestClient, services: Services, plug: str,
                                                op: dict[str, str]) -> None:
    write(services, plug, "11.2", [(T0 + i * 10 * 60_000, 1.0) for i in range(6 * 48)])  # two days
    services.telemetry.maintain(now_ms=T0 + DAY, prune=False)  # the job ran after the first day only
    body = client.get(f"/api/v1/devices/{plug}/telemetry", headers=op,
                      params={"key": "11.2", "since": T0, "until": T0 + 2 * DAY - 1, "bucket": "1h",
                              "agg": "count"}).json()
    assert body["source"] == "rollup+raw"
    assert [p["value"] for p in body["points"]] == [6] * 48
