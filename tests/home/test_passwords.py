"""Password change (re-authenticated, ends other sessions) and reset by a mailed link (single-use, expiring, hashed),
with the mail received by a real SMTP server."""

from __future__ import annotations

import hashlib
import queue
import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.home.models import PasswordReset
from ecohub.hub import free_port
from ecohub.settings import Settings
from ecohub.store import utcnow
from tests.home.conftest import PASSWORD, bearer, signup

NEW = "a much better passphrase"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.put(message_from_bytes(envelope.content))
        return "250 OK"

    def next(self) -> Message:
        """The next message (the mailer sends off the request thread: wait for it, up to a deadline)."""
        return self.messages.get(timeout=10)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free port."""
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def mailing(tmp_path: Path, inbox: tuple[Inbox, int]) -> Iterator[tuple[TestClient, Inbox, Services]]:
    """Services whose mail goes to the test's SMTP server, and an API client."""
    handler, port = inbox
    services = bootstrap(Settings(data_dir=tmp_path / "data", mail={
        "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False, "public_url": "https://hub.example"}))
    with TestClient(create_app(services)) as client:
        yield client, handler, services
    services.close()


def _token_from(mail: Message) -> tuple[str, str]:
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    link = re.search(r"(https://\S+)", body)
    assert link, body
    token = link.group(1).split("#token=", 1)[1]
    return link.group(1), token


def test_change_needs_the_current_password_and_ends_other_sessions(client: TestClient) -> None:
    ann = signup(client, "ann@example.org")
    other = client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": PASSWORD})
    other_headers = bearer(other.json()["access_token"])
    r = client.post("/api/v1/auth/password", json={"new_password": NEW}, headers=ann["headers"])
    assert r.status_code == 422  # no current password: not even looked at
    r = client.post("/api/v1/auth/password", json={"current_password": "", "new_password": NEW},
                    headers=ann["headers"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_password"
    r = client.post("/api/v1/auth/password", json={"current_password": "not my password", "new_password": NEW},
                    headers=ann["headers"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_password"
    r = client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "1234567890"},
                    headers=ann["headers"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"
    assert client.get("/api/v1/me", headers=other_headers).status_code == 200  # nothing changed so far
    r = client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW},
                    headers=ann["headers"])
    assert r.status_code == 200 and r.json()["revoked_sessions"] == 1
    assert client.get("/api/v1/me", headers=other_headers).status_code == 401  # the other session is over
    assert client.get("/api/v1/me", headers=ann["headers"]).status_code == 200  # this one stays
    old = client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": PASSWORD})
    assert old.status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": NEW}).status_code == 200


def test_operators_have_no_password_to_change(client: TestClient, operator_token: str) -> None:
    r = client.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": NEW},
                    headers=bearer(operator_token))
    assert r.status_code == 403


def test_reset_by_mail_is_single_use_hashed_and_ends_every_session(
        mailing: tuple[TestClient, Inbox, Services]) -> None:
    client, inbox, services = mailing
    ann = signup(client, "ann@example.org")
    r = client.post("/api/v1/auth/password-reset", json={"email": "nobody@example.org"})
    assert r.status_code == 202
    same = client.post("/api/v1/auth/password-reset", json={"email": "ANN@example.org"})
    assert same.status_code == 202 and same.json() == r.json()  # no account enumeration
    mail = inbox.next()
    assert mail["To"] == "ann@example.org" and "reset" in mail["Subject"].lower()
    assert inbox.messages.empty()  # nothing went to the unknown address
    link, token = _token_from(mail)
    assert link.startswith("https://hub.example/console/password-reset#token=")  # never the request's Host
    with services.dbs.cell_session(ann["cell"]) as s:
        stored = s.scalars(select(PasswordReset.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # only the hash is kept

    page = client.get(link.removeprefix("https://hub.example"))  # following the link opens the console's reset page
    assert page.status_code == 200 and 'name="token"' in page.text
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "1234567890"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"  # the link still works after this
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW})
    assert r.status_code == 200 and r.json()["revoked_sessions"] == 1
    assert client.get("/api/v1/me", headers=ann["headers"]).status_code == 401
    again = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW + "!"})
    assert again.status_code == 422 and again.json()["error"]["code"] == "invalid_reset_token"
    assert client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": NEW}).status_code == 200
    forged = client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": token[:-4] + "AAAA", "new_password": NEW})
    assert forged.status_code == 422 and forged.json()["error"]["code"] == "invalid_reset_token"


def test_a_reset_link_expires(mailing: tuple[TestClient, Inbox, Services]) -> None:
    client, inbox, services = mailing
    ann = signup(client, "bob@example.org", country="US")
    assert client.post("/api/v1/auth/password-reset", json={"email": "bob@example.org"}).status_code == 202
    _, token = _token_from(inbox.next())
    with services.dbs.cell_session(ann["cell"]) as s:  # the link's lifetime passes
        s.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_reset_token"
    assert client.get("/api/v1/me", headers=ann["headers"]).status_code == 200  # nothing changed


def test_reset_requests_are_throttled_for_any_address(client: TestClient) -> None:
    for _ in range(3):
        assert client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.org"}).status_code == 202
    r = client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.org"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_without_a_relay_development_prints_the_mail_to_the_log(client: TestClient, services: Services,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    signup(client, "cy@example.org")
    with caplog.at_level("WARNING", logger="ecohub.home.mail"):
        assert client.post("/api/v1/auth/password-reset", json={"email": "cy@example.org"}).status_code == 202
        services.home.passwords.mailer.close()  # wait for the queued message
    assert "#token=ehr_eu_" in caplog.text and "cy@example.org" in caplog.text



def test_console_change_password_form(client: TestClient) -> None:
    signup(client, "di@example.org")
    login = client.post("/console/login", data={"email": "di@example.org", "password": PASSWORD},
                        follow_redirects=False)
    assert login.status_code == 303
    assert 'name="current_password"' in client.get("/console/password").text
    wrong = client.post("/console/password", data={"current_password": "nope nope nope", "new_password": NEW})
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    ok = client.post("/console/password", data={"current_password": PASSWORD, "new_password": NEW})
    assert ok.status_code == 200 and "Your password was changed" in ok.text
    assert client.get("/console/homes").status_code == 200  # this session stays
    page = client.post("/console/password-reset", data={"email": "nobody@example.org"})
    assert page.status_code == 200 and "If an account has this address" in page.text
