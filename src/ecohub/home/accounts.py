"""Use cases of accounts: sign-up pinned to a region cell, sign-in, user access tokens, sign-out."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecohub.auth import Principal, Role
from ecohub.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound, Unauthorized
from ecohub.home.domain import cell_of_user_token, check_password, new_user_token, normalize_email
from ecohub.home.models import User, UserToken
from ecohub.privacy.crypto import CellKeys, SubjectKeys, TextCipher, open_text
from ecohub.region.domain import cell_for_country
from ecohub.store import Databases, aware, utcnow
from ecohub.throttle import Throttle

# OWASP's argon2id baseline (19 MiB, t=2, p=1): ~20 ms per hash, so sign-in stays fast and guessing stays slow.
PASSWORDS = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
LOCALE_RE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4}){0,2}$")


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def email_aad(user_id: str) -> bytes:
    """Associated data of a sealed `users.email`: the column and the row it belongs to."""
    return f"users.email:{user_id}".encode()


def open_email(key: bytes, user_id: str, stored: str) -> str:
    """Decrypt a sealed `users.email` value with the subject's key; InvalidTag/Shredded when it cannot be read."""
    return open_text(key, stored, email_aad(user_id))


class EmailVault:
    """The only code that reads or writes a user's email: a keyed hash for lookup, the address for the owner.

    With privacy's `TextCipher` the stored address is AES-GCM encrypted with the subject's data key
    (crypto-shredding); without one it is stored normalised.
    """

    def __init__(self, key: bytes, cipher: TextCipher | None = None) -> None:
        self._key = key
        self.cipher = cipher

    def lookup_hash(self, email: str) -> bytes:
        """HMAC-SHA256 of the normalised address: finds a user without storing a plain index of emails."""
        return hmac.new(self._key, b"email:" + normalize_email(email).encode(), hashlib.sha256).digest()

    def seal(self, s: Session, user_id: str, email: str, cell: str) -> str:
        """What is stored in `users.email` for this subject of `cell`, inside the caller's transaction `s`."""
        if self.cipher is None:
            return normalize_email(email)
        return self.cipher.seal(s, cell, user_id, normalize_email(email), email_aad(user_id))

    def open(self, user: User) -> str:
        """The address of a stored user (plain text rows from before sealing are returned as they are)."""
        if self.cipher is None:
            return user.email
        return self.cipher.open(user.cell, user.id, user.email, email_aad(user.id))


@dataclass(frozen=True)
class SigninThrottles:
    """How often one may try to sign in: per source address (all attempts) and per account (failures)."""

    signin_source: Throttle = field(default_factory=lambda: Throttle("30/minute", what="sign-in attempts"))
    signin_failures: Throttle = field(default_factory=lambda: Throttle("10/15 minutes",
                                                                        what="failed sign-ins for this account"))


class AccountService:
    """End-user accounts, each in the database of its cell only; tokens name their cell."""

    def __init__(self, dbs: Databases, *, secret_key: bytes, token_ttl_s: int,
                 cipher: TextCipher | None = None, throttles: SigninThrottles | None = None) -> None:
        self.throttles = throttles or SigninThrottles()
        self.dbs = dbs
        self.emails = EmailVault(secret_key, cipher)
        self.token_ttl_s = token_ttl_s
        self._dummy_hash = PASSWORDS.hash(secrets.token_hex(16))

    def signup(self, *, email: str, password: str, country: str) -> dict[str, str]:
        """Create a user pinned to the cell of `country`; the email may exist only once across all cells."""
        local, _, domain = normalize_email(email).partition("@")
        check_password(password, context=(email, local, domain.split(".")[0]))
        cell = self.dbs.check_cell(cell_for_country(country, self.dbs.cells))
        email_hash = self.emails.lookup_hash(email)
        if self._locate(email_hash) is not None:
            raise Conflict("an account with this email already exists", code=ErrorCode.EMAIL_TAKEN)
        user_id = secrets.token_hex(12)
        try:
            with self.dbs.cell_session(cell) as s:
                s.add(User(id=user_id, email_hash=email_hash, email=self.emails.seal(s, user_id, email, cell),
                           password_hash=PASSWORDS.hash(password), country=country.strip().upper(), cell=cell))
        except IntegrityError as err:
            raise Conflict("an account with this email already exists", code=ErrorCode.EMAIL_TAKEN) from err
        return {"user_id": user_id, "cell": cell}

    def _locate(self, email_hash: bytes, hint: str | None = None) -> tuple[str, str] | None:
        """(cell, user_id) of the user with this email hash: a keyed-hash probe per cell, no copy of the data."""
        cells = self.dbs.cells
        if hint in cells:
            cells = [hint, *(c for c in cells if c != hint)]
        for cell in cells:
            with self.dbs.cell_session(cell) as s:
                user_id = s.scalar(select(User.id).where(User.email_hash == email_hash))
            if user_id is not None:
                return cell, user_id
        return None

    def locate(self, email: str) -> tuple[str, str] | None:
        """(cell, user_id) of the account with this email, if any."""
        return self._locate(self.emails.lookup_hash(email))

    def signin(self, *, email: str, password: str, cell: str | None = None,
               source: str | None = None) -> dict[str, Any]:
        """Check the password and mint an access token (OAuth2 password flow).

        Throttled per source address (every attempt) and per account (failed attempts): over either limit the
        answer is 429 with the seconds to wait, before any password is checked."""
        email_hash = self.emails.lookup_hash(email)
        account = email_hash.hex()
        if source:
            self.throttles.signin_source.hit("signin", source)
        self.throttles.signin_failures.check("signin", account)
        found = self._locate(email_hash, cell)
        if found is None:
            self._burn(password)
            self._failed(account)
        user_cell, user_id = found
        with self.dbs.cell_session(user_cell) as s:
            user = s.get(User, user_id)
            if user is None:  # erased between the probe and now
                self._failed(account)
            try:
                PASSWORDS.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError) as err:
                self.throttles.signin_failures.hit("signin", account)
                raise Unauthorized("wrong email or password", code=ErrorCode.INVALID_CREDENTIALS) from err
            if PASSWORDS.check_needs_rehash(user.password_hash):
                user.password_hash = PASSWORDS.hash(password)
            token = new_user_token(user_cell)
            s.add(UserToken(id=secrets.token_hex(8), token_hash=_sha256(token), user_id=user_id,
                            expires_at=utcnow() + timedelta(seconds=self.token_ttl_s)))
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl_s,
                "user_id": user_id, "cell": user_cell}

    def _failed(self, account: str) -> NoReturn:
        self.throttles.signin_failures.hit("signin", account)
        raise Unauthorized("wrong email or password", code=ErrorCode.INVALID_CREDENTIALS)

    def _burn(self, password: str) -> None:
        """Spend the time of a real verification so unknown emails cannot be told apart by timing."""
        try:
            PASSWORDS.verify(self._dummy_hash, password)
        except VerificationError:
            pass

    def authenticate(self, token: str) -> Principal:
        """The user behind an access token, checked in the cell the token names."""
        cell = cell_of_user_token(token)
        if cell is None:
            raise Unauthorized("not an ecohub user token", code=ErrorCode.INVALID_TOKEN)
        if cell not in self.dbs.cells:
            raise Forbidden(f"this account is served by region cell {cell!r}; call that cell's API",
                            code=ErrorCode.WRONG_CELL, cell=cell)
        with self.dbs.cell_session(cell) as s:
            row = s.scalar(select(UserToken).where(UserToken.token_hash == _sha256(token)))
            if row is None:
                raise Unauthorized("unknown token", code=ErrorCode.INVALID_TOKEN)
            if row.revoked_at is not None:
                raise Unauthorized("token revoked", code=ErrorCode.TOKEN_REVOKED)
            if aware(row.expires_at) < utcnow():
                raise Unauthorized("token expired", code=ErrorCode.TOKEN_EXPIRED)
            return Principal(Role.USER, row.user_id, cell=cell)

    def logout(self, token: str) -> None:
        """Revoke an access token; it is refused from the next request on."""
        cell = cell_of_user_token(token)
        if cell is None or cell not in self.dbs.cells:
            raise Unauthorized("not an ecohub user token", code=ErrorCode.INVALID_TOKEN)
        with self.dbs.cell_session(cell) as s:
            s.execute(update(UserToken).where(UserToken.token_hash == _sha256(token), UserToken.revoked_at.is_(None))
                      .values(revoked_at=utcnow()))

    def profile(self, principal: Principal) -> dict[str, Any]:
        """The caller's own account (their email included: it is theirs)."""
        cell = principal.cell or ""
        with self.dbs.cell_session(cell) as s:
            user = s.get(User, principal.subject)
            if user is None:
                raise Unauthorized("the account no longer exists", code=ErrorCode.INVALID_TOKEN)
            return {"user_id": user.id, "email": self.emails.open(user), "country": user.country, "cell": user.cell,
                    "created_at": aware(user.created_at).isoformat(), "locale": user.locale}

    def set_locale(self, principal: Principal, locale: str | None) -> None:
        """Remember the user's language (a catalogue id such as `de` or `zh_Hans`; None: follow the browser)."""
        if locale is not None and not LOCALE_RE.match(locale):
            raise InvalidInput(f"{locale!r} is not a language tag", code=ErrorCode.INVALID_INPUT)
        with self.dbs.cell_session(principal.cell or "") as s:
            user = s.get(User, principal.subject)
            if user is None:
                raise Unauthorized("the account no longer exists", code=ErrorCode.INVALID_TOKEN)
            user.locale = locale

    def locales(self, cell: str, user_ids: list[str]) -> dict[str, str | None]:
        """Each user's chosen language (None: they follow their browser), for words sent to them unasked."""
        if not user_ids:
            return {}
        with self.dbs.cell_session(cell) as s:
            return {uid: loc for uid, loc in s.execute(select(User.id, User.locale).where(User.id.in_(user_ids)))}

    def exists(self, cell: str, user_id: str) -> bool:
        """True when the user exists in `cell`."""
        with self.dbs.cell_session(cell) as s:
            return s.get(User, user_id) is not None


def read_email_from_copy(db_path: Path, cell_keys: CellKeys, cell: str, user_id: str) -> str:
    """Try to read a user's email from a database file (e.g. a backup) with the current key files."""
    from ecohub.store.db import make_engine

    engine = make_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound(f"no user {user_id} in {db_path.name}")
            return open_email(SubjectKeys(None, cell_keys).get(s, cell, user_id), user_id, user.email)
    finally:
        engine.dispose()
