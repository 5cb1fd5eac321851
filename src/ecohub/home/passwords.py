"""Use cases of passwords: change (re-authenticated with the current one) and reset by a mailed, single-use,
expiring link; either ends every other session of the account."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role
from ecohub.errors import ErrorCode, Forbidden, InvalidInput, Unauthorized
from ecohub.home.accounts import PASSWORDS, AccountService
from ecohub.home.domain import check_password, normalize_email
from ecohub.home.mail import Mailer
from ecohub.home.models import PasswordReset, User, UserToken
from ecohub.store import aware, utcnow
from ecohub.throttle import Throttle

RESET_PREFIX = "ehr_"
RESET_PAGE = "/console/password-reset"


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cell_of_reset_token(token: str) -> str | None:
    """The cell a reset token names (`ehr_{cell}_{secret}`), or None when it is not one."""
    if not token.startswith(RESET_PREFIX):
        return None
    cell, sep, rest = token[len(RESET_PREFIX):].partition("_")
    return cell if sep and cell.isalnum() and len(rest) >= 32 else None


@dataclass(frozen=True)
class ResetThrottles:
    """How often resets may be asked for: per source address and per (any) email address, so the answer never
    depends on whether the account exists."""

    source: Throttle = field(default_factory=lambda: Throttle("10/hour", what="password-reset requests"))
    address: Throttle = field(default_factory=lambda: Throttle("3/hour",
                                                               what="password-reset requests for this address"))


class PasswordService:
    """Password change and reset of end users (operators and partners sign in with tokens, not passwords)."""

    def __init__(self, accounts: AccountService, mailer: Mailer, *, public_url: str, reset_ttl_s: int,
                 throttles: ResetThrottles | None = None) -> None:
        self.accounts = accounts
        self.dbs = accounts.dbs
        self.mailer = mailer
        self.public_url = public_url.rstrip("/")
        self.reset_ttl_s = reset_ttl_s
        self.throttles = throttles or ResetThrottles()

    def change(self, principal: Principal, *, current_password: str, new_password: str,
               keep_token: str | None = None) -> dict[str, int]:
        """Set a new password after checking the current one; every other session and token of the user ends."""
        if principal.role != Role.USER or not principal.cell:
            raise Forbidden("only user accounts have passwords", code=ErrorCode.WRONG_ROLE)
        with self.dbs.cell_session(principal.cell) as s:
            user = s.get(User, principal.subject)
            if user is None:
                raise Unauthorized("the account no longer exists", code=ErrorCode.INVALID_TOKEN)
            account = user.email_hash.hex()  # the same per-account budget as failed sign-ins
            self.accounts.throttles.signin_failures.check("signin", account)
            try:
                PASSWORDS.verify(user.password_hash, current_password or "")
            except (VerificationError, InvalidHashError) as err:
                self.accounts.throttles.signin_failures.hit("signin", account)
                raise Forbidden("the current password is wrong", code=ErrorCode.WRONG_PASSWORD) from err
            self._check_new(user, new_password)
            user.password_hash = PASSWORDS.hash(new_password)
            revoked = self._end_sessions(s, user.id, keep=keep_token)
        return {"revoked_sessions": revoked}

    def _check_new(self, user: User, password: str) -> None:
        email = self.accounts.emails.open(user)
        local, _, domain = normalize_email(email).partition("@")
        check_password(password, context=(email, local, domain.split(".")[0]))

    @staticmethod
    def _end_sessions(s: Session, user_id: str, *, keep: str | None) -> int:
        q = update(UserToken).where(UserToken.user_id == user_id, UserToken.revoked_at.is_(None))
        if keep:
            q = q.where(UserToken.token_hash != _sha256(keep))
        result = s.execute(q.values(revoked_at=utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)

    def request_reset(self, email: str, *, source: str | None = None) -> None:
        """Mail a reset link if an account has this address; the caller always answers 202 the same way."""
        try:
            normalized = normalize_email(email)
        except InvalidInput:
            return  # not an address: nothing to send, and nothing to tell
        if source:
            self.throttles.source.hit("reset", source)
        self.throttles.address.hit("reset", self.accounts.emails.lookup_hash(normalized).hex())
        found = self.accounts.locate(normalized)
        if found is None:
            return
        cell, user_id = found
        token = f"{RESET_PREFIX}{cell}_{secrets.token_urlsafe(32)}"
        with self.dbs.cell_session(cell) as s:
            user = s.get(User, user_id)
            if user is None:
                return
            address = self.accounts.emails.open(user)
            s.add(PasswordReset(id=secrets.token_hex(8), user_id=user_id, token_hash=_sha256(token),
                                expires_at=utcnow() + timedelta(seconds=self.reset_ttl_s)))
        minutes = self.reset_ttl_s // 60
        self.mailer.send(address, "Reset your ecohub password", (
            "Someone (hopefully you) asked to reset the password of your ecohub account.\n\n"
            f"Open this link within {minutes} minutes to choose a new password (it works once):\n"
            f"{self.public_url}{RESET_PAGE}#token={token}\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"))

    def confirm_reset(self, token: str, new_password: str) -> dict[str, int]:
        """Set a new password with a reset token: single-use, expiring; every session of the account ends."""
        invalid = InvalidInput("this reset link is invalid, used or expired; ask for a new one",
                               code=ErrorCode.INVALID_RESET_TOKEN)
        cell = cell_of_reset_token(token or "")
        if cell is None or cell not in self.dbs.cells:
            raise invalid
        with self.dbs.cell_session(cell) as s:
            row = s.scalar(select(PasswordReset).where(PasswordReset.token_hash == _sha256(token)))
            if row is None or row.used_at is not None or aware(row.expires_at) < utcnow():
                raise invalid
            user = s.get(User, row.user_id)
            if user is None:
                raise invalid
            self._check_new(user, new_password)  # a weak password leaves the link usable for a better one
            user.password_hash = PASSWORDS.hash(new_password)
            now = utcnow()
            s.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                      .values(used_at=now))  # this link and every other pending one
            revoked = self._end_sessions(s, user.id, keep=None)
        return {"revoked_sessions": revoked}
