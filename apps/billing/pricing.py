"""Pure rating functions: usage quantities + a rate card -> invoice lines.

No database, no Django: everything here is plain dataclasses and Decimals so the
arithmetic can be checked against hand computation (see tests/test_pricing.py).
Rounding follows the rule written in :mod:`apps.billing.money` (per line, half-up
to the currency's minor unit; tax once on the subtotal).

Units. Usage is metered in raw units (seconds, tokens, characters, plays...).
A price is quoted per *priced unit*: ``unit_divisor`` raw units make one priced
unit (60 seconds = 1 minute, 1,000,000 tokens = 1 M tokens). Tiers, package
sizes and included allowances are expressed in priced units.

Price models (``PriceModel``):
* ``per_unit``   amount = q x unit_price
* ``graduated``  each tier prices only the units that fall inside it (+ the flat
                 fee of every tier reached): 1-1000 @0.05, 1001+ @0.04 ->
                 1001 units = 50.00 + 0.04
* ``volume``     the tier the *total* falls in prices every unit (+ that tier's
                 flat fee): 1001 units = 1001 x 0.04
* ``package``    unit_price buys ``package_size`` units; started packages count
                 in full: 2,001 characters at 1.00 per 1,000 = 3 x 1.00
* ``cost_plus``  amount = provider cost x (1 + markup_percent / 100)

Tier bounds ``up_to`` are inclusive; the last tier has ``up_to=None``.

Included allowance: the first ``included_quantity`` priced units of a metric are
free. The usage line shows the gross amount for the whole quantity and a
separate negative "allowance" line brings it down to what the units beyond the
allowance cost under the same price model (graduated: those units keep the
tier they fall in; volume: the tier is chosen by the total; package: started
packages of the remainder).

Invoice assembly (:func:`rate_invoice`): usage lines, allowance lines, the monthly
platform fee, then a minimum-commitment top-up if fee + usage - allowances is
below the commitment, then tax on the subtotal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from enum import StrEnum

from apps.billing.money import CALC_CONTEXT, ZERO, as_decimal, ceil_div, quantize, quantize_provider_cost


class PriceModel(StrEnum):
    PER_UNIT = "per_unit"
    GRADUATED = "graduated"
    VOLUME = "volume"
    PACKAGE = "package"
    COST_PLUS = "cost_plus"


class LineKind(StrEnum):
    USAGE = "usage"
    ALLOWANCE = "allowance"
    PLATFORM_FEE = "platform_fee"
    MINIMUM_COMMITMENT = "minimum_commitment"
    CREDIT = "credit"
    LATE_USAGE = "late_usage"  # usage of an already-invoiced month, carried into a later invoice


class PricingError(ValueError):
    """A rate card that cannot be applied (bad tiers, allowance on cost-plus...)."""


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # inclusive upper bound in priced units; None = no bound
    unit_price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class MetricPrice:
    metric: str
    model: PriceModel
    dimension: str = ""  # e.g. an LLM model name; "" prices every dimension of the metric
    unit_price: Decimal = ZERO  # per priced unit; per package for `package`
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal = Decimal(1)
    markup_percent: Decimal = ZERO
    included_quantity: Decimal = ZERO  # allowance, in priced units
    unit_divisor: Decimal = Decimal(1)  # raw units per priced unit
    unit_label: str = "unit"
    description: str = ""

    def __post_init__(self) -> None:
        validate_price(self)


def validate_price(price: MetricPrice) -> None:
    if price.unit_divisor <= 0:
        raise PricingError(f"{price.metric}: unit divisor must be positive")
    if price.included_quantity < 0:
        raise PricingError(f"{price.metric}: included quantity cannot be negative")
    if price.unit_price < 0:
        raise PricingError(f"{price.metric}: unit price cannot be negative")
    if price.markup_percent < 0:
        raise PricingError(f"{price.metric}: markup cannot be negative")
    for index, tier in enumerate(price.tiers, start=1):
        if tier.unit_price < 0 or tier.flat_fee < 0 or (tier.up_to is not None and tier.up_to < 0):
            raise PricingError(f"{price.metric}: tier {index} has a negative bound, unit price or flat fee")
    if price.model in (PriceModel.GRADUATED, PriceModel.VOLUME):
        if not price.tiers:
            raise PricingError(f"{price.metric}: {price.model} pricing needs at least one tier")
        previous = ZERO
        for index, tier in enumerate(price.tiers):
            last = index == len(price.tiers) - 1
            if tier.up_to is None and not last:
                raise PricingError(f"{price.metric}: only the last tier may be unbounded")
            if tier.up_to is not None and tier.up_to <= previous:
                raise PricingError(f"{price.metric}: tier bounds must increase")
            if tier.up_to is not None:
                previous = tier.up_to
        if price.tiers[-1].up_to is not None:
            raise PricingError(f"{price.metric}: the last tier must be unbounded (up_to=None)")
    if price.package_size <= 0:
        raise PricingError(f"{price.metric}: package size must be positive")
    if price.model == PriceModel.COST_PLUS and price.included_quantity:
        raise PricingError(f"{price.metric}: an included allowance cannot apply to cost-plus pricing")


def billable_call_seconds(seconds: Decimal | int, *, increment: int, minimum: int) -> Decimal:
    """Per-call rounding rule for call seconds: round up to the billing increment
    (1 = per second, 60 = per started minute) and charge at least `minimum`
    seconds. A call with no connected seconds is not billed. The SQL aggregation
    in selectors.py mirrors this expression exactly."""
    seconds = as_decimal(seconds)
    if seconds <= 0:
        return ZERO
    rounded = ceil_div(seconds, Decimal(increment)) * increment
    return max(rounded, Decimal(minimum))


def priced_quantity(price: MetricPrice, raw_quantity: Decimal) -> Decimal:
    with localcontext(CALC_CONTEXT):
        return as_decimal(raw_quantity) / price.unit_divisor


def _graduated(tiers: Sequence[Tier], quantity: Decimal) -> Decimal:
    amount = ZERO
    lower = ZERO
    for tier in tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        amount += (upper - lower) * tier.unit_price + tier.flat_fee
        if tier.up_to is None:
            break
        lower = tier.up_to
    return amount


def _volume_tier(tiers: Sequence[Tier], quantity: Decimal) -> Tier:
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    raise AssertionError("validated tiers end unbounded")


def rate_quantity(price: MetricPrice, quantity: Decimal, *, provider_cost: Decimal = ZERO) -> Decimal:
    """Unrounded amount for `quantity` priced units (cost-plus uses provider_cost)."""
    quantity = as_decimal(quantity)
    with localcontext(CALC_CONTEXT):
        if price.model == PriceModel.COST_PLUS:
            return as_decimal(provider_cost) * (1 + price.markup_percent / 100)
        if quantity <= 0:
            return ZERO
        if price.model == PriceModel.PER_UNIT:
            return quantity * price.unit_price
        if price.model == PriceModel.GRADUATED:
            return _graduated(price.tiers, quantity)
        if price.model == PriceModel.VOLUME:
            tier = _volume_tier(price.tiers, quantity)
            return quantity * tier.unit_price + tier.flat_fee
        if price.model == PriceModel.PACKAGE:
            return ceil_div(quantity, price.package_size) * price.unit_price
    raise PricingError(f"unknown price model {price.model!r}")


def _rate_after_allowance(price: MetricPrice, quantity: Decimal, included: Decimal) -> Decimal:
    """Unrounded amount for the units beyond the allowance (see module docstring)."""
    with localcontext(CALC_CONTEXT):
        remainder = quantity - included
        if remainder <= 0:
            return ZERO
        if price.model == PriceModel.PER_UNIT:
            return remainder * price.unit_price
        if price.model == PriceModel.GRADUATED:
            return _graduated(price.tiers, quantity) - _graduated(price.tiers, included)
        if price.model == PriceModel.VOLUME:
            tier = _volume_tier(price.tiers, quantity)
            return remainder * tier.unit_price + tier.flat_fee
        if price.model == PriceModel.PACKAGE:
            return ceil_div(remainder, price.package_size) * price.unit_price
    raise PricingError(f"{price.metric}: no allowance rule for {price.model}")


@dataclass(frozen=True)
class UsageTotal:
    """Aggregated usage of one metric/dimension over a period (from SQL)."""

    metric: str
    dimension: str
    quantity: Decimal  # raw units, already rounded per call where a rule applies
    provider_cost: Decimal = ZERO
    unit: str = ""


@dataclass(frozen=True)
class Line:
    kind: LineKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None  # None for tiered / cost-plus lines
    amount: Decimal  # rounded to the minor unit
    metric: str = ""
    dimension: str = ""
    provider_cost: Decimal = ZERO


@dataclass(frozen=True)
class CardTerms:
    currency: str
    platform_fee: Decimal = ZERO
    minimum_commitment: Decimal = ZERO
    tax_rate_percent: Decimal = ZERO
    tax_label: str = "Tax"


@dataclass(frozen=True)
class RatedInvoice:
    currency: str
    lines: tuple[Line, ...]
    subtotal: Decimal
    tax_rate_percent: Decimal
    tax: Decimal
    total: Decimal
    provider_cost: Decimal = field(default=ZERO)


def rate_usage(price: MetricPrice, usage: UsageTotal, currency: str) -> list[Line]:
    """The usage line (gross) and, if an allowance applies, the allowance line."""
    quantity = priced_quantity(price, usage.quantity)
    gross = quantize(rate_quantity(price, quantity, provider_cost=usage.provider_cost), currency)
    label = price.description or _describe(usage.metric, usage.dimension)
    unit_price = price.unit_price if price.model in (PriceModel.PER_UNIT, PriceModel.PACKAGE) else None
    lines = [
        Line(
            kind=LineKind.USAGE,
            description=label,
            quantity=quantity,
            unit=price.unit_label if price.model != PriceModel.COST_PLUS else price.unit_label,
            unit_price=unit_price,
            amount=gross,
            metric=usage.metric,
            dimension=usage.dimension,
            provider_cost=usage.provider_cost,
        )
    ]
    if price.included_quantity > 0 and quantity > 0:
        used = min(quantity, price.included_quantity)
        net = quantize(_rate_after_allowance(price, quantity, used), currency)
        lines.append(
            Line(
                kind=LineKind.ALLOWANCE,
                description=f"Included allowance: {label}",
                quantity=-used,
                unit=price.unit_label,
                unit_price=None,
                amount=net - gross,
                metric=usage.metric,
                dimension=usage.dimension,
            )
        )
    return lines


def _describe(metric: str, dimension: str) -> str:
    text = metric.replace("_", " ").capitalize()
    return f"{text} ({dimension})" if dimension else text


def find_price(prices: Iterable[MetricPrice], metric: str, dimension: str) -> MetricPrice | None:
    """Exact (metric, dimension) first, then the metric's catch-all price (dimension "")."""
    fallback = None
    for price in prices:
        if price.metric != metric:
            continue
        if price.dimension == dimension:
            return price
        if price.dimension == "":
            fallback = price
    return fallback


def merge_prices(default: Iterable[MetricPrice], override: Iterable[MetricPrice]) -> list[MetricPrice]:
    """A client card overrides the agency default per (metric, dimension)."""
    merged = {(p.metric, p.dimension): p for p in default}
    merged.update({(p.metric, p.dimension): p for p in override})
    return list(merged.values())


def rate_invoice(*, terms: CardTerms, prices: Sequence[MetricPrice], usage: Sequence[UsageTotal]) -> RatedInvoice:
    """Turn a period's aggregated usage into invoice lines and totals.

    Usage without a price is listed at 0.00 so it is visible (and its provider
    cost reaches the margin report) rather than silently dropped.
    """
    currency = terms.currency
    lines: list[Line] = []
    for total in sorted(usage, key=lambda u: (u.metric, u.dimension)):
        price = find_price(prices, total.metric, total.dimension)
        if price is None:
            lines.append(
                Line(
                    kind=LineKind.USAGE,
                    description=f"{_describe(total.metric, total.dimension)} (not priced)",
                    quantity=total.quantity,
                    unit=total.unit,
                    unit_price=None,
                    amount=quantize(ZERO, currency),
                    metric=total.metric,
                    dimension=total.dimension,
                    provider_cost=total.provider_cost,
                )
            )
            continue
        lines.extend(rate_usage(price, total, currency))
    if terms.platform_fee:
        lines.append(
            Line(
                kind=LineKind.PLATFORM_FEE,
                description="Monthly platform fee",
                quantity=Decimal(1),
                unit="month",
                unit_price=terms.platform_fee,
                amount=quantize(terms.platform_fee, currency),
            )
        )
    before_minimum = sum((line.amount for line in lines), ZERO)
    minimum = quantize(terms.minimum_commitment, currency)
    if minimum > before_minimum:
        lines.append(
            Line(
                kind=LineKind.MINIMUM_COMMITMENT,
                description=f"Minimum commitment top-up (commitment {minimum} {currency})",
                quantity=Decimal(1),
                unit="month",
                unit_price=None,
                amount=minimum - before_minimum,
            )
        )
    return totals_for(lines=lines, currency=currency, tax_rate_percent=terms.tax_rate_percent)


def totals_for(*, lines: Sequence[Line], currency: str, tax_rate_percent: Decimal) -> RatedInvoice:
    subtotal = quantize(sum((line.amount for line in lines), ZERO), currency)
    with localcontext(CALC_CONTEXT):
        tax = quantize(subtotal * as_decimal(tax_rate_percent) / 100, currency)
    return RatedInvoice(
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax_rate_percent=as_decimal(tax_rate_percent),
        tax=tax,
        total=subtotal + tax,
        provider_cost=sum((line.provider_cost for line in lines), ZERO),
    )


# --- what vendors charge us (provider cost, for margins and cost_plus) --------------------------


@dataclass(frozen=True)
class VendorPrice:
    """A vendor's list price: `amount` per `per` raw units (0.0043 per 60 seconds,
    0.15 per 1,000,000 tokens), billed in steps of `increment` raw units when given
    (carriers bill started minutes: increment 60)."""

    amount: Decimal
    per: Decimal = Decimal(1)
    increment: Decimal | None = None
    currency: str = "USD"

    @classmethod
    def of(cls, amount, per=1, increment=None, currency: str = "USD") -> VendorPrice:
        return cls(as_decimal(amount), as_decimal(per), None if increment is None else as_decimal(increment),
                   currency.upper())


def vendor_cost(price: VendorPrice, quantity: Decimal | int | str) -> Decimal:
    """What `quantity` raw units cost at `price`, rounded once to the ledger's 8 decimals.
    61 s at 0.0085/min in 60 s increments = 2 x 0.0085 = 0.017."""
    quantity = as_decimal(quantity)
    if quantity <= 0:
        return quantize_provider_cost(ZERO)
    with localcontext(CALC_CONTEXT):
        if price.increment:
            quantity = ceil_div(quantity, price.increment) * price.increment
        return quantize_provider_cost(quantity * price.amount / price.per)
