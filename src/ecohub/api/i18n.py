"""Languages of the console and the API's messages: gettext catalogues (Babel), the request's locale, formatting.

The catalogues live in `ecohub/api/locale/<locale>/LC_MESSAGES/messages.po` with their compiled `.mo` beside them
(committed, so `pip install -e .` needs no build step); `scripts/i18n.py` extracts, updates and compiles them;
`ecohub.locales` loads them (the contexts that word messages for people use it too).
The locale of a request is the console's language cookie (set by the switcher, and from the account's preference at
sign-in), else the browser's Accept-Language, else English."""

from __future__ import annotations

import contextvars
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_compact_currency, format_compact_decimal, format_currency, format_decimal

from ecohub.locales import DEFAULT, LANGUAGES, normalize, translations

COOKIE = "ecohub_lang"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("ecohub_locale", default=DEFAULT)


def negotiate(accept_language: str | None) -> str | None:
    """The best catalogue for an Accept-Language header (by q-value, then order), or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found = normalize(tag)
        if found and q > 0:
            ranked.append((-q, i, found))
    return min(ranked)[2] if ranked else None


def choose(*, cookie: str | None = None, accept_language: str | None = None) -> str:
    """The locale of a request: an explicit choice (cookie), else the browser's, else English."""
    return normalize(cookie) or negotiate(accept_language) or DEFAULT


def activate(locale: str) -> contextvars.Token[str]:
    """Make `locale` the current one for this request (its task and the threads it hands work to)."""
    return _current.set(locale if locale in LANGUAGES else DEFAULT)


def deactivate(token: contextvars.Token[str]) -> None:
    """Back to the locale before `activate`."""
    _current.reset(token)


def current() -> str:
    """The current request's locale."""
    return _current.get()


def html_lang(locale: str | None = None) -> str:
    """The BCP 47 tag for `<html lang>`."""
    return LANGUAGES.get(locale or current(), LANGUAGES[DEFAULT])[1]


def babel_locale(locale: str | None = None) -> Locale:
    """The Babel locale used to format numbers, dates and money."""
    return Locale.parse(LANGUAGES.get(locale or current(), LANGUAGES[DEFAULT])[2])


def gettext(message: str, **variables: Any) -> str:
    """`message` in the current locale, with `%(name)s` variables filled in."""
    text = translations(current()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    """The singular or plural form for `n` in the current locale (`%(num)s` is n)."""
    text = translations(current()).ungettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


def N_(message: str) -> str:  # gettext: mark for extraction, translate later
    """Mark a string for the catalogue without translating it now (it is translated where it is shown)."""
    return message


# user-facing API error messages with a fixed text (the handler translates them word for word; codes never change)
API_MESSAGES = (
    N_("wrong email or password"), N_("unknown token"), N_("token revoked"), N_("token expired"),
    N_("the account no longer exists"), N_("not an ecohub user token"), N_("not an ecohub token"),
    N_("a bearer token is required"), N_("an account with this email already exists"),
    N_("no account with this email"), N_("wrong bind code for this device"), N_("this bind code was already used"),
    N_("this bind code was already used; show a new one on the device"),
    N_("this bind code has expired; show a new one on the device"), N_("you own this home already"),
    N_("this password is on the list of common and breached passwords; choose another"),
    N_("password must not be one character repeated"),
    N_("commands are not available in this process (no broker connection)"),
    N_("no automation engine runs in this process"),
)


def translate_known(message: str, locale: str) -> str:
    """A message in `locale` when the catalogue has it word for word, else unchanged (API error messages)."""
    return translations(locale).ugettext(message) if message else message


# ------------------------------------------------------------------------------------------------- formatting


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number(value: Any, digits: int | None = None) -> str:
    """A number in the current locale's way (12.345,678 in German); anything else unchanged."""
    n = _number(value)
    if n is None:
        return "—" if value is None else str(value)
    fmt = None if digits is None else "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(n, format=fmt, locale=babel_locale())


def price(amount: Any, currency: str) -> str:
    """An amount in a currency, as the locale writes it (809.983,99 NGN in German; NGN 809,983.99 in English)."""
    n = _number(amount)
    if n is None:
        return f"{amount} {currency}"
    return _spaced(format_currency(n, currency, locale=babel_locale()))


_CODE_BEFORE = re.compile(r"^(-?)([A-Z]{3})(?=[\d-])")
_CODE_AFTER = re.compile(r"(\d)([A-Z]{3})$")


def _spaced(text: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a letter code next to digits gets a no-break space."""
    return _CODE_AFTER.sub("\\1\xa0\\2", _CODE_BEFORE.sub("\\1\\2\xa0", text))


def compact(value: Any, currency: str | None = None) -> str:
    """A large number or amount in short form (1,2 Mio. in German, 1.2M in English, 123.5万 in Chinese)."""
    n = _number(value)
    if n is None:
        return str(value)
    if abs(n) < 1000:
        return price(n, currency) if currency else number(n, 0)
    if abs(n) < 1_000_000:  # short forms start at millions in many locales: a whole amount reads better
        if not currency:
            return number(n, 0)
        pattern = babel_locale().currency_formats["standard"].pattern.split(";")[0].replace(".00", "")
        return _spaced(format_currency(n.quantize(Decimal(1)), currency, format=pattern, locale=babel_locale(),
                                       currency_digits=False))
    if currency:
        return _spaced(format_compact_currency(n, currency, locale=babel_locale(), fraction_digits=1))
    return format_compact_decimal(n, locale=babel_locale(), fraction_digits=1)


def country(code: str | None, fallback: str | None = None) -> str:
    """A market's country in the current language from CLDR (DE → Deutschland in German), else `fallback`."""
    if not code:
        return fallback or "—"
    return str(babel_locale().territories.get(str(code).upper()) or fallback or code)


def ms_time(ms: int | None) -> str:
    """A unix-ms timestamp as a date and time (UTC) in the locale's way."""
    if not ms:
        return "—"
    return format_datetime(datetime.fromtimestamp(ms / 1000, UTC), "medium", tzinfo=UTC, locale=babel_locale())


def iso_time(text: str | None) -> str:
    """An ISO-8601 timestamp (or date) as the locale writes it."""
    if not text:
        return "—"
    try:
        ts = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    if len(str(text)) <= 10:
        return format_date(ts.date(), "medium", locale=babel_locale())
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return format_datetime(ts, "medium", tzinfo=UTC, locale=babel_locale())


def iso_date(text: str | None) -> str:
    """The date of an ISO-8601 timestamp or date, as the locale writes it."""
    if not text:
        return "—"
    try:
        return format_date(datetime.fromisoformat(str(text)[:10]).date(), "medium", locale=babel_locale())
    except ValueError:
        return str(text)
