"""Money primitives. Every amount Switchboard bills is a `Decimal` in a currency,
and it is rounded in exactly one place: :func:`quantize`.

THE ROUNDING RULE (the only one; everything else calls into it)
----------------------------------------------------------------
* Rating works at full precision (``CALC_CONTEXT``: 40 significant digits).
  Quantities, unit prices, tier maths and markups are never rounded on the way.
* Each invoice line amount is rounded once, **half-up** (``ROUND_HALF_UP``, i.e.
  0.005 -> 0.01, -0.005 -> -0.01) to the currency's minor unit (2 decimals for
  USD/EUR/GBP, 0 for JPY, 3 for KWD...).
* The subtotal is the sum of the rounded lines (so the lines always add up).
* Tax is computed once on the subtotal and rounded by the same rule.
* Total = subtotal + tax.
Unit prices are shown with their own precision (e.g. $0.0125 / min) and are
never rounded to the minor unit.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, localcontext

# ISO 4217 exponents for the currencies we expect; anything else defaults to 2.
MINOR_UNIT_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "INR": 2,
    "BRL": 2,
    "MXN": 2,
    "ZAR": 2,
    "SGD": 2,
    "HKD": 2,
    "AED": 2,
    "ILS": 2,
    "TRY": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}

# Precision used for all intermediate maths (divisions such as seconds -> minutes).
CALC_CONTEXT = Context(prec=40, rounding=ROUND_HALF_UP)

ZERO = Decimal("0")


def minor_unit_exponent(currency: str) -> int:
    return MINOR_UNIT_EXPONENTS.get(currency.upper(), 2)


def as_decimal(value: Decimal | int | str) -> Decimal:
    """A Decimal from a Decimal, int or string. Floats are refused: they cannot
    represent 0.1 and would leak binary rounding into invoices."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"money must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, (int, str)):
        return Decimal(value)
    raise TypeError(f"cannot make a Decimal from {type(value).__name__}")


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round `amount` half-up to `currency`'s minor unit. The one rounding place."""
    exponent = Decimal(1).scaleb(-minor_unit_exponent(currency))
    with localcontext(CALC_CONTEXT):
        return as_decimal(amount).quantize(exponent, rounding=ROUND_HALF_UP)


# Vendor costs are kept in the usage ledger to 8 decimals (a token costs 1.5e-7 USD):
# a cost computed at full precision is rounded half-up to that once, here.
PROVIDER_COST_EXPONENT = Decimal("1e-8")


def quantize_provider_cost(amount: Decimal) -> Decimal:
    with localcontext(CALC_CONTEXT):
        return as_decimal(amount).quantize(PROVIDER_COST_EXPONENT, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Integer minor units (cents) as payment processors want them, e.g. 12.34 USD -> 1234."""
    rounded = quantize(amount, currency)
    return int(rounded.scaleb(minor_unit_exponent(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    return quantize(Decimal(units).scaleb(-minor_unit_exponent(currency)), currency)


def ceil_div(numerator: Decimal, denominator: Decimal) -> Decimal:
    """Smallest integer >= numerator / denominator (for packages and started minutes)."""
    with localcontext(CALC_CONTEXT):
        return (as_decimal(numerator) / as_decimal(denominator)).to_integral_value(rounding=ROUND_CEILING)


def format_money(amount: Decimal, currency: str) -> str:
    """'1,234.50 USD' -- for PDFs and the admin; never parsed back."""
    rounded = quantize(amount, currency)
    places = minor_unit_exponent(currency)
    return f"{rounded:,.{places}f} {currency.upper()}"


def format_rate(value: Decimal) -> str:
    """A percentage or unit price without trailing zeros or exponent: 10.0000 -> '10', 7.5000 -> '7.5'."""
    text = format(as_decimal(value).normalize(), "f")
    return text
