"""Pure rules of the ecosystem: lifecycle stages, transitions and guards; currencies, money, ids."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from ecohub.errors import Conflict, ErrorCode, InvalidInput

MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){2,}$")


class Stage(StrEnum):
    """Lifecycle of a product."""

    CONCEPT = "concept"
    DEFINED = "defined"
    IN_DEVELOPMENT = "in_development"
    CERTIFICATION = "certification"
    APPROVED = "approved"
    LAUNCHED = "launched"
    DISCONTINUED = "discontinued"
    REJECTED = "rejected"


ORDER = [
    Stage.CONCEPT,
    Stage.DEFINED,
    Stage.IN_DEVELOPMENT,
    Stage.CERTIFICATION,
    Stage.APPROVED,
    Stage.LAUNCHED,
    Stage.DISCONTINUED,
]

TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CONCEPT: frozenset({Stage.DEFINED, Stage.DISCONTINUED}),
    Stage.DEFINED: frozenset({Stage.IN_DEVELOPMENT, Stage.DISCONTINUED}),
    Stage.IN_DEVELOPMENT: frozenset({Stage.CERTIFICATION, Stage.DISCONTINUED}),
    Stage.CERTIFICATION: frozenset({Stage.APPROVED, Stage.REJECTED}),
    Stage.REJECTED: frozenset({Stage.IN_DEVELOPMENT, Stage.DISCONTINUED}),
    Stage.APPROVED: frozenset({Stage.LAUNCHED, Stage.DISCONTINUED}),
    Stage.LAUNCHED: frozenset({Stage.DISCONTINUED}),
    Stage.DISCONTINUED: frozenset(),
}

# Test units exist from certification on; rejected products keep their units for the next round.
PROVISIONABLE = frozenset({Stage.CERTIFICATION, Stage.REJECTED, Stage.APPROVED, Stage.LAUNCHED})


@dataclass(frozen=True, slots=True)
class TransitionContext:
    """What the guards may look at: whether a valid spec exists and which markets have a passing report."""

    has_valid_spec: bool
    target_markets: tuple[str, ...] = ()
    passed_markets: frozenset[str] = frozenset()


def check_model_id(model: str) -> str:
    """Model ids look like `brand.kind.version` (e.g. `acme.plug.v1`, `chuangmi.plug.212a01`)."""
    if not MODEL_RE.match(model or "") or len(model) > 64:
        raise InvalidInput(
            f"model id {model!r} must look like brand.kind.version (lower-case, e.g. acme.plug.v1)",
            code=ErrorCode.INVALID_MODEL,
        )
    return model


def check_transition(current: Stage, target: Stage, ctx: TransitionContext) -> None:
    """Raise Conflict when the move is illegal or a guard fails; say why."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise Conflict(
            f"a product cannot go from {current} to {target} (allowed from {current}: {allowed})",
            code=ErrorCode.ILLEGAL_TRANSITION,
        )
    if target == Stage.DEFINED and not ctx.has_valid_spec:
        raise Conflict("a product is defined only with a valid spec", code=ErrorCode.GUARD_FAILED)
    if target == Stage.LAUNCHED:
        closed = [m for m in ctx.target_markets if m not in ctx.passed_markets]
        if closed:
            raise Conflict("launch needs every target market still certified for the current spec, with valid "
                           "evidence; recertify first. Not open: " + ", ".join(closed), code=ErrorCode.GUARD_FAILED)
    if target == Stage.APPROVED:
        missing = [m for m in ctx.target_markets if m not in ctx.passed_markets]
        if not ctx.target_markets:
            raise Conflict("approval needs target markets and a passing certification report for each",
                           code=ErrorCode.GUARD_FAILED)
        if missing:
            raise Conflict(
                "approval needs a passing certification report for every target market; missing: "
                + ", ".join(missing),
                code=ErrorCode.GUARD_FAILED,
            )


def path_to(current: Stage, target: Stage) -> list[Stage]:
    """The forward steps from `current` to `target` along the main line (for `--stage` on import)."""
    if current == target:
        return []
    if current not in ORDER or target not in ORDER or ORDER.index(target) < ORDER.index(current):
        raise Conflict(f"cannot move a product forward from {current} to {target}", code=ErrorCode.ILLEGAL_TRANSITION)
    return ORDER[ORDER.index(current) + 1 : ORDER.index(target) + 1]


# ISO 4217 codes the registry accepts (every market's currency plus the usual reporting currencies).
CURRENCY_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys([
        "USD", "EUR", "GBP", "CHF", "CNY", "INR", "CAD", "AUD", "NZD", "SGD", "HKD", "MOP", "TWD", "MYR", "THB",
        "PHP", "BRL", "MXN", "ARS", "COP", "PEN", "UYU", "CRC", "GTQ", "DOP", "SEK", "NOK", "DKK", "PLN", "CZK",
        "HUF", "RON", "RSD", "UAH", "TRY", "AED", "SAR", "QAR", "ILS", "EGP", "MAD", "NGN", "KES", "ZAR", "GHS",
        "TZS", "PKR", "BDT", "LKR", "NPR", "KZT", "UZS", "KHR", "MMK", "LBP", "IDR"
    ], 2),
    **dict.fromkeys(["JPY", "KRW", "VND", "ISK", "CLP", "XOF"], 0),
    **dict.fromkeys(["KWD", "BHD", "OMR", "JOD", "TND"], 3),
}
CURRENCIES = frozenset(CURRENCY_MINOR_UNITS)


class PartnerKind(StrEnum):
    """An ecosystem company the brand invests in, or a third-party developer connecting its own goods."""

    ECOSYSTEM = "ecosystem"
    DEVELOPER = "developer"


class ExitKind(StrEnum):
    """How a partner left the private portfolio."""

    IPO = "ipo"
    ACQUISITION = "acquisition"


class Availability(StrEnum):
    """Availability of a listing in a market."""

    IN_STOCK = "in_stock"
    PREORDER = "preorder"
    OUT_OF_STOCK = "out_of_stock"
    DISCONTINUED = "discontinued"
    SUSPENDED = "suspended"  # taken off sale because the market no longer qualifies (the listing says why)


# Not on sale: what catalogue counts and KPIs leave out.
OFF_SALE = frozenset({Availability.DISCONTINUED, Availability.SUSPENDED})

SERIES = ("angel", "seed", "pre_a", "series_a", "series_b", "series_c", "series_d", "pre_ipo", "strategic")
LISTABLE = frozenset({Stage.APPROVED, Stage.LAUNCHED})
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")


def check_currency(code: str) -> str:
    """An ISO 4217 code ecohub knows, upper-case; InvalidInput otherwise."""
    value = (code or "").upper()
    if value not in CURRENCIES:
        raise InvalidInput(f"unknown currency {code!r} (ISO 4217, e.g. USD, EUR, CNY)", code=ErrorCode.UNKNOWN_CURRENCY)
    return value


def money(value: Decimal | int | str, *, field: str, currency: str = "USD", positive: bool = False,
          places: int | None = None) -> Decimal:
    """A non-negative amount as Decimal with at most the currency's minor units; floats are refused."""
    if isinstance(value, float):
        raise InvalidInput(f"{field}: money is never a float; send a decimal string", code=ErrorCode.INVALID_AMOUNT)
    try:
        amount = Decimal(str(value))
    except InvalidOperation as err:
        raise InvalidInput(f"{field}: {value!r} is not an amount", code=ErrorCode.INVALID_AMOUNT) from err
    if not amount.is_finite() or amount < 0 or (positive and amount == 0):
        need = "positive" if positive else "zero or positive"
        raise InvalidInput(f"{field} must be {need}, got {value}", code=ErrorCode.INVALID_AMOUNT)
    places = CURRENCY_MINOR_UNITS.get(currency, 2) if places is None else places
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidInput(f"{field}: {currency} has {places} decimal place(s), got {value}",
                           code=ErrorCode.INVALID_AMOUNT)
    return amount


def check_slug(value: str, *, what: str) -> str:
    """Ids of partners and suppliers: lower-case letters, digits, '-' and '_'."""
    if not SLUG_RE.match(value or ""):
        raise InvalidInput(f"{what} id {value!r} must be 2-64 lower-case letters, digits, '-' or '_'",
                           code=ErrorCode.INVALID_ID)
    return value


def slugify(name: str) -> str:
    """A readable id from a name (`Ninebot Ltd.` → `ninebot-ltd`)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "x"
