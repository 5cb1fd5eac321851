"""Affordability as policy (pure): a product's net margin at a price, the brand's margin floor and ceiling, and the
price band around the target price, converted per market currency.

Net margin at a listing price P (in the market's currency, `tax_rate` of it being sales tax/VAT):

    P_ex   = P / (1 + tax_rate)                                  the price without tax
    margin = (P_ex - BOM - other_cost_fixed - other_cost_rate·P_ex) / P_ex

BOM is the sum of quantity x unit cost over the product's BOM lines; `other_cost_fixed` is a per-unit amount
(assembly, packaging, freight) and `other_cost_rate` the share of the ex-tax price spent on channel, logistics,
warranty, marketing and payment fees — what lies between the hardware's cost and a *net* margin (Xiaomi's public rule
caps that net margin of hardware at 5 %). Since the margin grows with the price, each bound is one price:

    margin ≥ floor    ⇔  P ≥ (1 + tax_rate) · (BOM + other_cost_fixed) / (1 - other_cost_rate - floor)
    margin ≤ ceiling  ⇔  P ≤ (1 + tax_rate) · (BOM + other_cost_fixed) / (1 - other_cost_rate - ceiling)

and the band is target · (1 ± band) with the target price converted into the market's currency."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from ecohub.ecosystem.domain import CURRENCY_MINOR_UNITS
from ecohub.errors import ErrorCode, InvalidInput

# Reference exchange rates (units of each currency per US dollar, late 2025): the brand's planning rates, shipped as
# data with the release (not live market rates); amounts are converted through USD.
FX_PER_USD: dict[str, Decimal] = {k: Decimal(v) for k, v in {
    "USD": "1", "EUR": "0.92", "GBP": "0.79", "CHF": "0.88", "CNY": "7.2", "INR": "83", "CAD": "1.36", "AUD": "1.52",
    "NZD": "1.65", "SGD": "1.34", "HKD": "7.8", "MOP": "8.05", "TWD": "32", "MYR": "4.7", "THB": "36", "PHP": "56",
    "BRL": "5.0", "MXN": "17", "ARS": "900", "COP": "3900", "PEN": "3.7", "UYU": "39", "CRC": "520", "GTQ": "7.8",
    "DOP": "59", "SEK": "10.5", "NOK": "10.6", "DKK": "6.9", "PLN": "4.0", "CZK": "23", "HUF": "360", "RON": "4.6",
    "RSD": "108", "UAH": "39", "TRY": "32", "AED": "3.67", "SAR": "3.75", "QAR": "3.64", "ILS": "3.7", "EGP": "48",
    "MAD": "10", "NGN": "1500", "KES": "130", "ZAR": "18.5", "GHS": "14", "TZS": "2600", "PKR": "280", "BDT": "117",
    "LKR": "300", "NPR": "133", "KZT": "450", "UZS": "12600", "KHR": "4100", "MMK": "2100", "LBP": "89500",
    "IDR": "16000", "JPY": "150", "KRW": "1350", "VND": "25000", "ISK": "138", "CLP": "930", "XOF": "600",
    "KWD": "0.31", "BHD": "0.376", "OMR": "0.385", "JOD": "0.709", "TND": "3.1"}.items()}

RULES = ("margin_floor", "margin_ceiling", "price_band")


def convert(amount: Decimal, src: str, dst: str) -> Decimal:
    """`amount` in `src` expressed in `dst` at the reference rates (unrounded)."""
    if src == dst:
        return amount
    try:
        return amount / FX_PER_USD[src] * FX_PER_USD[dst]
    except KeyError as err:
        raise InvalidInput(f"no reference exchange rate for {err.args[0]}", code=ErrorCode.UNKNOWN_FX_RATE) from err


def minor(currency: str) -> Decimal:
    """The smallest amount of a currency (0.01, 1, 0.001)."""
    return Decimal(1).scaleb(-CURRENCY_MINOR_UNITS.get(currency, 2))


@dataclass(frozen=True, slots=True)
class Policy:
    """The brand's pricing settings for a product in a market (fractions as Decimals: 0.05 is 5 %)."""

    margin_floor: Decimal = Decimal("0")  # no listing below cost unless overridden
    margin_ceiling: Decimal = Decimal("0.05")  # Xiaomi's public rule: hardware net margin of at most 5 %
    band: Decimal = Decimal("0.25")  # a listing stays within ±25 % of the (converted) target price
    other_cost_rate: Decimal = Decimal("0")  # share of the ex-tax price: channel, logistics, warranty, marketing
    other_cost_fixed: Decimal = Decimal("0")  # per unit, in the product's currency: assembly, packaging, freight
    tax_rate: Decimal = Decimal("0")  # sales tax / VAT included in the listing price (0: prices are ex tax)

    def to_dict(self) -> dict[str, str]:
        """The settings as decimal strings."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


SETTINGS = tuple(f.name for f in fields(Policy))
DEFAULT_POLICY = Policy()


def check_policy(p: Policy) -> Policy:
    """Refuse settings that make no sense or leave no price at which the ceiling can hold."""
    problems = []
    if not Decimal(0) <= p.other_cost_rate < 1:
        problems.append("other_cost_rate must be at least 0 and below 1")
    if p.other_cost_fixed < 0:
        problems.append("other_cost_fixed cannot be negative")
    if not Decimal(0) <= p.tax_rate < 1:
        problems.append("tax_rate must be at least 0 and below 1")
    if not Decimal(0) < p.band <= 1:
        problems.append("band must be above 0 and at most 1")
    if not Decimal(-1) < p.margin_floor < p.margin_ceiling:
        problems.append("margin_floor must be above -1 and below margin_ceiling")
    if p.other_cost_rate + p.margin_ceiling >= 1:
        problems.append("other_cost_rate + margin_ceiling must stay below 1")
    if problems:
        raise InvalidInput("invalid pricing policy: " + "; ".join(problems), code=ErrorCode.INVALID_POLICY,
                           problems=problems)
    return p


def merge(base: Policy, overrides: dict[str, Decimal | None]) -> Policy:
    """`base` with the settings that `overrides` sets (None inherits)."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None and k in SETTINGS})


def net_margin(price: Decimal, cost: Decimal, p: Policy) -> Decimal:
    """Net margin at `price` given BOM + fixed other costs `cost` (same currency); see the module docstring."""
    ex_tax = price / (1 + p.tax_rate)
    return (ex_tax - cost - p.other_cost_rate * ex_tax) / ex_tax


def price_for_margin(margin: Decimal, cost: Decimal, p: Policy) -> Decimal:
    """The listing price at which the net margin is exactly `margin` (requires other_cost_rate + margin < 1)."""
    return (1 + p.tax_rate) * cost / (1 - p.other_cost_rate - margin)


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule a price breaks, with the range that rule allows."""

    rule: str
    message: str
    allowed_min: Decimal | None
    allowed_max: Decimal | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy says about a price in a market currency."""

    price: Decimal
    currency: str
    margin: Decimal
    allowed_min: Decimal
    allowed_max: Decimal
    violations: tuple[Violation, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the price keeps every rule."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """The verdict as the API shows it (amounts in the market's minor units, margin to 0.01 %)."""
        return {"price": str(self.price), "currency": self.currency, "margin": str(self.margin.quantize(
                    Decimal("0.0001"))), "allowed_min": str(self.allowed_min), "allowed_max": str(self.allowed_max),
                "within_policy": self.ok,
                "violations": [{"rule": v.rule, "message": v.message,
                                "allowed_min": None if v.allowed_min is None else str(v.allowed_min),
                                "allowed_max": None if v.allowed_max is None else str(v.allowed_max)}
                               for v in self.violations]}


def evaluate(price: Decimal, *, currency: str, target: Decimal, cost: Decimal, policy: Policy) -> Verdict:
    """Check `price` against the margin floor, the margin ceiling and the price band; `target` and `cost`
    (BOM + fixed other costs) are already in `currency`. The allowed range is rounded inwards to minor units."""
    step = minor(currency)
    lo_margin = price_for_margin(policy.margin_floor, cost, policy)
    hi_margin = price_for_margin(policy.margin_ceiling, cost, policy)
    lo_band, hi_band = target * (1 - policy.band), target * (1 + policy.band)
    margin = net_margin(price, cost, policy)

    def up(x: Decimal) -> Decimal:
        return x.quantize(step, rounding=ROUND_CEILING)

    def down(x: Decimal) -> Decimal:
        return x.quantize(step, rounding=ROUND_FLOOR)

    pct = Decimal(100)
    violations = []
    if margin < policy.margin_floor:
        violations.append(Violation("margin_floor", f"net margin {margin * pct:.1f} % is below the floor of "
                                    f"{policy.margin_floor * pct:.1f} %: at least {up(lo_margin)} {currency}",
                                    up(lo_margin), None))
    if margin > policy.margin_ceiling:
        violations.append(Violation("margin_ceiling", f"net margin {margin * pct:.1f} % is above the ceiling of "
                                    f"{policy.margin_ceiling * pct:.1f} %: at most {down(hi_margin)} {currency}",
                                    None, down(hi_margin)))
    if not lo_band <= price <= hi_band:
        violations.append(Violation("price_band", f"{price} {currency} is outside ±{policy.band * pct:.0f} % of the "
                                    f"target price {target.quantize(step)} {currency}", up(lo_band), down(hi_band)))
    return Verdict(price, currency, margin, up(max(lo_margin, lo_band)), down(min(hi_margin, hi_band)),
                   tuple(violations))
