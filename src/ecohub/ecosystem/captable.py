"""Cap table arithmetic (pure): every holder's stake after each round is computed from the rounds, never typed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from ecohub.errors import Conflict, ErrorCode, InvalidInput

BRAND = "brand"
FOUNDERS = "founders"
MINORITY_LIMIT = Fraction(1, 2)
STAKE_PLACES = Decimal("0.0000000001")


@dataclass(frozen=True, slots=True)
class RoundTerms:
    """A round in one currency: pre-money valuation, amount raised, and the brand's part of the amount."""

    series: str
    pre_money: Decimal
    raised: Decimal
    brand_amount: Decimal

    @property
    def post_money(self) -> Decimal:
        """Post-money valuation = pre-money + amount raised."""
        return self.pre_money + self.raised


@dataclass(frozen=True, slots=True)
class CapTable:
    """Holders and their exact stakes; the stakes always sum to 1."""

    stakes: dict[str, Fraction] = field(default_factory=lambda: {FOUNDERS: Fraction(1)})

    @property
    def brand(self) -> Fraction:
        """The brand's stake."""
        return self.stakes.get(BRAND, Fraction(0))

    def as_percent(self) -> dict[str, Decimal]:
        """Stakes in percent, rounded for display (the exact fractions stay here)."""
        return {h: percent(s) for h, s in self.stakes.items()}


def check_terms(terms: RoundTerms) -> None:
    """Refuse rounds that cannot be computed: non-positive pre-money or raise, brand share outside [0, raise]."""
    if terms.pre_money <= 0:
        raise InvalidInput(f"pre-money valuation must be positive, got {terms.pre_money}",
                           code=ErrorCode.INVALID_AMOUNT)
    if terms.raised <= 0:
        raise InvalidInput(f"amount raised must be positive, got {terms.raised}", code=ErrorCode.INVALID_AMOUNT)
    if terms.brand_amount < 0:
        raise InvalidInput(f"the brand's participation cannot be negative, got {terms.brand_amount}",
                           code=ErrorCode.INVALID_AMOUNT)
    if terms.brand_amount > terms.raised:
        raise InvalidInput(f"the brand's participation {terms.brand_amount} exceeds the amount raised {terms.raised}",
                           code=ErrorCode.INVALID_AMOUNT)


def apply_round(table: CapTable, terms: RoundTerms) -> CapTable:
    """New shares are issued at the pre-money price: existing holders dilute by pre/post, new money buys the rest.

    The brand's stake becomes (old stake * pre + brand participation) / post.
    """
    check_terms(terms)
    pre, raised, brand = Fraction(terms.pre_money), Fraction(terms.raised), Fraction(terms.brand_amount)
    post = pre + raised
    stakes = {holder: stake * pre / post for holder, stake in table.stakes.items()}
    if brand:
        stakes[BRAND] = stakes.get(BRAND, Fraction(0)) + brand / post
    others = raised - brand
    if others:
        key = f"{terms.series} investors"
        stakes[key] = stakes.get(key, Fraction(0)) + others / post
    return CapTable(stakes)


def history(rounds: Iterable[RoundTerms]) -> list[CapTable]:
    """The cap table after each round, in order."""
    table = CapTable()
    out = []
    for terms in rounds:
        table = apply_round(table, terms)
        out.append(table)
    return out


def check_minority(stake: Fraction, *, override_reason: str | None) -> bool:
    """True when an override is needed and given; Conflict `minority_rule` when needed and missing."""
    if stake < MINORITY_LIMIT:
        return False
    if override_reason and override_reason.strip():
        return True
    raise Conflict(
        f"this round would take the brand to {percent(stake)}% — the policy is a minority stake (< 50%); "
        "give an override reason to record an audited exception",
        code=ErrorCode.MINORITY_RULE,
        stake_percent=str(percent(stake)),
    )


def percent(stake: Fraction, places: int = 4) -> Decimal:
    """A stake as a percentage, rounded half-even to `places` decimals."""
    value = Decimal(stake.numerator) * 100 / Decimal(stake.denominator)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def stored(stake: Fraction) -> Decimal:
    """A stake as the fraction stored next to a round (10 decimals; the exact value is recomputable)."""
    return (Decimal(stake.numerator) / Decimal(stake.denominator)).quantize(STAKE_PLACES, rounding=ROUND_HALF_EVEN)
