"""Cell migration 0021 (the webhooks' batch_max; delivered messages leave the queue) matches the model, keeps
existing webhooks at one message per POST and the messages still to send, downgrades cleanly and upgrades again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from ecohub.store.migrate import upgrade_engine
from tests.migrations import PG, column_roundtrip, pg_databases


def test_migration_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cell.db'}")
    upgrade_engine("cell", engine, "0020")
    with engine.begin() as conn:  # a webhook saved before batching existed (SQLite does not check its grant here)
        conn.execute(text("INSERT INTO app_webhooks (id, app_id, grant_id, url, secret, events, status, failures, "
                          "created_at) VALUES ('wh_old', 'app_x', 'g1', 'https://example.org/h', 'whsec_x', '[]', "
                          "'active', 0, '2026-01-01')"))
        for msg, status in (("msg_sent", "delivered"), ("msg_due", "pending"), ("msg_dead", "dead")):
            conn.execute(text("INSERT INTO app_webhook_deliveries (id, webhook_id, did, event_type, payload, status, "
                              "attempts, next_at, created_ms, delivered_ms) VALUES (:id, 'wh_old', 'd1', "
                              "'device.online', '{}', :status, 1, 0, 0, NULL)"), {"id": msg, "status": status})
    column_roundtrip(engine, "app_webhooks", "batch_max", down_to="0020")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT batch_max FROM app_webhooks WHERE id = 'wh_old'")).scalar() == 1
        left = conn.execute(text("SELECT id FROM app_webhook_deliveries ORDER BY id")).scalars().all()
        assert left == ["msg_dead", "msg_due"]  # what is still to send, and the dead letters
    assert "delivered_ms" not in {c["name"] for c in inspect(engine).get_columns("app_webhook_deliveries")}
    engine.dispose()


@pytest.mark.postgres
def test_migration_on_postgres() -> None:
    with pg_databases("ecohub_batch", ("cell",)) as prefix:
        engine = create_engine(f"{PG}/{prefix}_cell")
        column_roundtrip(engine, "app_webhooks", "batch_max", down_to="0020")
        engine.dispose()
