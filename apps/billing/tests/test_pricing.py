"""Worked examples for every price model, checked against hand computation.
Pure: no database (runs under plain pytest too)."""

from decimal import Decimal
from decimal import Decimal as D

import pytest

from apps.billing.money import as_decimal, format_money, from_minor_units, quantize, to_minor_units
from apps.billing.pricing import (
    CardTerms,
    LineKind,
    MetricPrice,
    PriceModel,
    PricingError,
    Tier,
    UsageTotal,
    billable_call_seconds,
    find_price,
    merge_prices,
    rate_invoice,
    rate_quantity,
    rate_usage,
)

TIERS = (Tier(D("1000"), D("0.05")), Tier(D("5000"), D("0.04")), Tier(None, D("0.03")))


def graduated(**kw):
    return MetricPrice(metric="m", model=PriceModel.GRADUATED, tiers=TIERS, **kw)


def volume(**kw):
    return MetricPrice(metric="m", model=PriceModel.VOLUME, tiers=TIERS, **kw)


def amount(price, quantity, currency="USD", cost=D("0")):
    return quantize(rate_quantity(price, D(quantity), provider_cost=cost), currency)


# --- money -----------------------------------------------------------------


def test_quantize_is_half_up_to_minor_unit():
    assert quantize(D("0.005"), "USD") == D("0.01")
    assert quantize(D("0.015"), "USD") == D("0.02")  # banker's rounding would give 0.02 too
    assert quantize(D("0.025"), "USD") == D("0.03")  # ... but 0.02 here: we are half-up
    assert quantize(D("-0.005"), "USD") == D("-0.01")
    assert quantize(D("0.0049999"), "USD") == D("0.00")
    assert quantize(D("12.5"), "JPY") == D("13")
    assert quantize(D("1.0005"), "KWD") == D("1.001")


def test_minor_units_round_trip():
    assert to_minor_units(D("12.34"), "USD") == 1234
    assert to_minor_units(D("12.345"), "USD") == 1235
    assert to_minor_units(D("1200"), "JPY") == 1200
    assert from_minor_units(1234, "USD") == D("12.34")
    assert format_money(D("1234.5"), "usd") == "1,234.50 USD"


def test_floats_are_refused():
    with pytest.raises(TypeError):
        as_decimal(0.1)
    assert as_decimal("0.1") + as_decimal("0.2") == D("0.3")


# --- per-call rounding -------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "increment", "minimum", "expected"),
    [
        ("61", 1, 0, "61"),  # per second
        ("0.4", 1, 0, "1"),  # a started second counts
        ("61", 60, 0, "120"),  # per started minute
        ("60", 60, 0, "60"),
        ("1", 60, 0, "60"),
        ("5", 1, 30, "30"),  # minimum seconds per call
        ("45", 1, 30, "45"),
        ("5", 60, 90, "90"),
        ("0", 60, 30, "0"),  # never connected: not billed
    ],
)
def test_billable_call_seconds(seconds, increment, minimum, expected):
    assert billable_call_seconds(D(seconds), increment=increment, minimum=minimum) == D(expected)


# --- price models ------------------------------------------------------------


def test_per_unit():
    price = MetricPrice(metric="m", model=PriceModel.PER_UNIT, unit_price=D("0.012"))
    assert amount(price, "1234") == D("14.81")  # 14.808


@pytest.mark.parametrize(
    ("quantity", "graduated_amount", "volume_amount"),
    [
        ("0", "0.00", "0.00"),
        ("1", "0.05", "0.05"),
        ("1000", "50.00", "50.00"),  # last unit of tier 1: both 1000 x 0.05
        ("1001", "50.04", "40.04"),  # graduated 50 + 1 x 0.04 ; volume 1001 x 0.04
        ("5000", "210.00", "200.00"),  # 50 + 4000 x 0.04 ; 5000 x 0.04
        ("5001", "210.03", "150.03"),  # 210 + 0.03 ; 5001 x 0.03
        ("1000.5", "50.02", "40.02"),  # 50 + 0.5 x 0.04 = 50.02 ; 1000.5 x 0.04 = 40.02
    ],
)
def test_graduated_vs_volume_at_tier_edges(quantity, graduated_amount, volume_amount):
    assert amount(graduated(), quantity) == D(graduated_amount)
    assert amount(volume(), quantity) == D(volume_amount)


def test_tier_flat_fees():
    tiers = (Tier(D("100"), D("0"), flat_fee=D("10")), Tier(None, D("0.50"), flat_fee=D("5")))
    grad = MetricPrice(metric="m", model=PriceModel.GRADUATED, tiers=tiers)
    vol = MetricPrice(metric="m", model=PriceModel.VOLUME, tiers=tiers)
    assert amount(grad, "100") == D("10.00")  # only tier 1 reached
    assert amount(grad, "101") == D("15.50")  # 10 + (5 + 1 x 0.50)
    assert amount(vol, "101") == D("55.50")  # 101 x 0.50 + 5


@pytest.mark.parametrize(
    ("characters", "expected"), [("0", "0.00"), ("1", "1.00"), ("1000", "1.00"), ("1001", "2.00"), ("2001", "3.00")]
)
def test_package_rounds_started_packages_up(characters, expected):
    price = MetricPrice(metric="tts_characters", model=PriceModel.PACKAGE, unit_price=D("1.00"), package_size=D("1000"))
    assert amount(price, characters) == D(expected)


def test_cost_plus_markup():
    price = MetricPrice(metric="m", model=PriceModel.COST_PLUS, markup_percent=D("25"))
    assert amount(price, "1", cost=D("12.3456")) == D("15.43")  # 15.432
    half = MetricPrice(metric="m", model=PriceModel.COST_PLUS, markup_percent=D("50"))
    assert amount(half, "1", cost=D("0.01")) == D("0.02")  # 0.015 rounds half-up
    assert amount(half, "0", cost=D("0")) == D("0.00")


def test_rounding_of_thirds_happens_per_line_not_per_event():
    per_minute = MetricPrice(
        metric="call_seconds_inbound",
        model=PriceModel.PER_UNIT,
        unit_price=D("0.10"),
        unit_divisor=D("60"),
        unit_label="min",
    )
    one_third = rate_usage(per_minute, UsageTotal("call_seconds_inbound", "", D("20")), "USD")
    assert one_third[0].amount == D("0.03")  # 0.0333...
    two_thirds = rate_usage(per_minute, UsageTotal("call_seconds_inbound", "", D("40")), "USD")
    assert two_thirds[0].amount == D("0.07")  # 0.0666...
    # Three 20-second calls are aggregated before rating: 1 minute = 0.10, not 3 x 0.03.
    three_calls = rate_usage(per_minute, UsageTotal("call_seconds_inbound", "", D("60")), "USD")
    assert three_calls[0].amount == D("0.10")
    assert three_calls[0].quantity == D("1")
    # A price of a third of a cent per unit.
    third_cent = MetricPrice(metric="m", model=PriceModel.PER_UNIT, unit_price=D("1") / D("300"))
    assert amount(third_cent, "1") == D("0.00")
    assert amount(third_cent, "2") == D("0.01")  # 0.00666...
    assert amount(third_cent, "300") == D("1.00")
    assert amount(third_cent, "150") == D("0.50")


# --- allowance -----------------------------------------------------------------


def test_allowance_per_unit():
    price = MetricPrice(
        metric="call_seconds_outbound",
        model=PriceModel.PER_UNIT,
        unit_price=D("0.05"),
        unit_divisor=D("60"),
        included_quantity=D("1000"),
        unit_label="min",
    )
    above = rate_usage(price, UsageTotal("call_seconds_outbound", "", D("72000")), "USD")  # 1200 min
    assert [(line.kind, line.quantity, line.amount) for line in above] == [
        (LineKind.USAGE, D("1200"), D("60.00")),
        (LineKind.ALLOWANCE, D("-1000"), D("-50.00")),
    ]
    below = rate_usage(price, UsageTotal("call_seconds_outbound", "", D("48000")), "USD")  # 800 min
    assert [(line.quantity, line.amount) for line in below] == [(D("800"), D("40.00")), (D("-800"), D("-40.00"))]


def test_allowance_with_graduated_volume_and_package():
    # Graduated: the units past the allowance keep their tier: 1500 -> 50 + 500 x 0.04 = 70; net 20.
    lines = rate_usage(graduated(included_quantity=D("1000")), UsageTotal("m", "", D("1500")), "USD")
    assert [line.amount for line in lines] == [D("70.00"), D("-50.00")]
    # Volume: the total picks the tier (0.04): gross 60, net 500 x 0.04 = 20.
    lines = rate_usage(volume(included_quantity=D("1000")), UsageTotal("m", "", D("1500")), "USD")
    assert [line.amount for line in lines] == [D("60.00"), D("-40.00")]
    # Package: 4200 chars = 5 packages; 2700 beyond the allowance = 3 packages.
    package = MetricPrice(
        metric="m", model=PriceModel.PACKAGE, unit_price=D("1.00"), package_size=D("1000"), included_quantity=D("1500")
    )
    lines = rate_usage(package, UsageTotal("m", "", D("4200")), "USD")
    assert [line.amount for line in lines] == [D("5.00"), D("-2.00")]


# --- invoice assembly ---------------------------------------------------------------


def test_minimum_commitment_tops_up_and_tax_applies_to_subtotal():
    prices = [MetricPrice(metric="clip_plays", model=PriceModel.PER_UNIT, unit_price=D("0.01"))]
    terms = CardTerms(currency="USD", platform_fee=D("49"), minimum_commitment=D("100"), tax_rate_percent=D("20"))
    rated = rate_invoice(terms=terms, prices=prices, usage=[UsageTotal("clip_plays", "", D("1000"))])
    assert [(line.kind, line.amount) for line in rated.lines] == [
        (LineKind.USAGE, D("10.00")),
        (LineKind.PLATFORM_FEE, D("49.00")),
        (LineKind.MINIMUM_COMMITMENT, D("41.00")),
    ]
    assert (rated.subtotal, rated.tax, rated.total) == (D("100.00"), D("20.00"), D("120.00"))


def test_minimum_commitment_not_applied_when_exceeded():
    prices = [MetricPrice(metric="clip_plays", model=PriceModel.PER_UNIT, unit_price=D("0.01"))]
    terms = CardTerms(currency="USD", platform_fee=D("49"), minimum_commitment=D("50"))
    rated = rate_invoice(terms=terms, prices=prices, usage=[UsageTotal("clip_plays", "", D("1000"))])
    assert [line.kind for line in rated.lines] == [LineKind.USAGE, LineKind.PLATFORM_FEE]
    assert rated.total == D("59.00")


def test_tax_is_rounded_once_on_the_subtotal():
    terms = CardTerms(currency="USD", platform_fee=D("10.05"), tax_rate_percent=D("7.5"))
    rated = rate_invoice(terms=terms, prices=[], usage=[])
    assert (rated.subtotal, rated.tax, rated.total) == (D("10.05"), D("0.75"), D("10.80"))  # 0.75375
    terms = CardTerms(currency="USD", platform_fee=D("0.10"), tax_rate_percent=D("5"))
    assert rate_invoice(terms=terms, prices=[], usage=[]).tax == D("0.01")  # 0.005 half-up


def test_full_invoice_worked_example():
    """A month for a client, computed by hand:
    inbound 30,000 s = 500 min @0.09            = 45.00, allowance 300 min -> -27.00
    outbound 12,345 s = 205.75 min @0.11        = 22.6325 -> 22.63
    llm gpt-4o input 2,500,000 tok, cost-plus 30% on 6.25 = 8.125 -> 8.13
    llm other model falls back to catch-all per 1M tok @0.50: 1,000,000 -> 0.50
    tts 10,001 chars, 0.30 per 1,000 (package)  = 11 x 0.30 = 3.30
    qa_runs 7 (no price)                         = 0.00
    platform fee                                 = 99.00
    subtotal 151.56, tax 8.25% = 12.5037 -> 12.50, total 164.06
    """
    prices = [
        MetricPrice(
            metric="call_seconds_inbound",
            model=PriceModel.PER_UNIT,
            unit_price=D("0.09"),
            unit_divisor=D("60"),
            included_quantity=D("300"),
            unit_label="min",
        ),
        MetricPrice(
            metric="call_seconds_outbound",
            model=PriceModel.PER_UNIT,
            unit_price=D("0.11"),
            unit_divisor=D("60"),
            unit_label="min",
        ),
        MetricPrice(metric="llm_input_tokens", dimension="gpt-4o", model=PriceModel.COST_PLUS, markup_percent=D("30")),
        MetricPrice(
            metric="llm_input_tokens",
            model=PriceModel.PER_UNIT,
            unit_price=D("0.50"),
            unit_divisor=D("1000000"),
            unit_label="M tokens",
        ),
        MetricPrice(metric="tts_characters", model=PriceModel.PACKAGE, unit_price=D("0.30"), package_size=D("1000")),
    ]
    usage = [
        UsageTotal("call_seconds_inbound", "", D("30000")),
        UsageTotal("call_seconds_outbound", "", D("12345")),
        UsageTotal("llm_input_tokens", "gpt-4o", D("2500000"), provider_cost=D("6.25")),
        UsageTotal("llm_input_tokens", "llama-3", D("1000000"), provider_cost=D("0.20")),
        UsageTotal("tts_characters", "", D("10001")),
        UsageTotal("qa_runs", "", D("7")),
    ]
    terms = CardTerms(currency="USD", platform_fee=D("99"), tax_rate_percent=D("8.25"))
    rated = rate_invoice(terms=terms, prices=prices, usage=usage)
    assert [(line.kind, line.metric, line.dimension, line.amount) for line in rated.lines] == [
        (LineKind.USAGE, "call_seconds_inbound", "", D("45.00")),
        (LineKind.ALLOWANCE, "call_seconds_inbound", "", D("-27.00")),
        (LineKind.USAGE, "call_seconds_outbound", "", D("22.63")),
        (LineKind.USAGE, "llm_input_tokens", "gpt-4o", D("8.13")),
        (LineKind.USAGE, "llm_input_tokens", "llama-3", D("0.50")),
        (LineKind.USAGE, "qa_runs", "", D("0.00")),
        (LineKind.USAGE, "tts_characters", "", D("3.30")),
        (LineKind.PLATFORM_FEE, "", "", D("99.00")),
    ]
    assert (rated.subtotal, rated.tax, rated.total) == (D("151.56"), D("12.50"), D("164.06"))
    assert rated.provider_cost == D("6.45")


def test_jpy_lines_round_to_whole_yen():
    price = MetricPrice(metric="m", model=PriceModel.PER_UNIT, unit_price=D("1.5"))
    rated = rate_invoice(
        terms=CardTerms(currency="JPY", tax_rate_percent=D("10")), prices=[price], usage=[UsageTotal("m", "", D("3"))]
    )
    assert (rated.lines[0].amount, rated.tax, rated.total) == (D("5"), D("1"), D("6"))  # 4.5 -> 5; 0.5 -> 1


# --- card composition and validation ---------------------------------------------------


def test_client_card_overrides_default_per_metric_and_dimension():
    default = [
        MetricPrice(metric="a", model=PriceModel.PER_UNIT, unit_price=D("1")),
        MetricPrice(metric="b", model=PriceModel.PER_UNIT, unit_price=D("2")),
    ]
    override = [
        MetricPrice(metric="b", model=PriceModel.PER_UNIT, unit_price=D("3")),
        MetricPrice(metric="b", dimension="x", model=PriceModel.PER_UNIT, unit_price=D("4")),
    ]
    merged = merge_prices(default, override)
    assert find_price(merged, "a", "").unit_price == D("1")
    assert find_price(merged, "b", "").unit_price == D("3")
    assert find_price(merged, "b", "x").unit_price == D("4")
    assert find_price(merged, "b", "y").unit_price == D("3")
    assert find_price(merged, "c", "") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": PriceModel.GRADUATED, "tiers": ()},
        {"model": PriceModel.GRADUATED, "tiers": (Tier(D("10"), D("1")), Tier(D("5"), D("1")), Tier(None, D("1")))},
        {"model": PriceModel.VOLUME, "tiers": (Tier(D("10"), D("1")),)},
        {"model": PriceModel.VOLUME, "tiers": (Tier(None, D("1")), Tier(D("10"), D("1")))},
        {"model": PriceModel.PACKAGE, "package_size": D("0")},
        {"model": PriceModel.COST_PLUS, "included_quantity": D("10")},
        {"model": PriceModel.PER_UNIT, "unit_divisor": D("0")},
    ],
)
def test_invalid_prices_are_refused(kwargs):
    with pytest.raises(PricingError):
        MetricPrice(metric="m", **kwargs)


# --- vendor costs (provider_cost) ------------------------------------------------------------------


def test_vendor_cost_is_full_precision_then_rounded_once_to_eight_decimals():
    from apps.billing.pricing import VendorPrice, vendor_cost

    per_million = VendorPrice.of("0.075", per=1_000_000)
    assert vendor_cost(per_million, 1) == Decimal("0.00000008")  # 7.5e-8, half-up
    assert vendor_cost(per_million, 1000) == Decimal("0.00007500")
    per_minute = VendorPrice.of("0.0043", per=60)
    assert vendor_cost(per_minute, Decimal("58.5")) == Decimal("0.00419250")
    assert vendor_cost(per_minute, 0) == Decimal("0E-8")


def test_vendor_cost_in_increments_counts_started_steps():
    from apps.billing.pricing import VendorPrice, vendor_cost

    started_minutes = VendorPrice.of("0.0085", per=60, increment=60)
    assert vendor_cost(started_minutes, Decimal("60")) == Decimal("0.00850000")
    assert vendor_cost(started_minutes, Decimal("60.001")) == Decimal("0.01700000")
    assert vendor_cost(started_minutes, 1) == Decimal("0.00850000")
    with pytest.raises(TypeError):
        vendor_cost(started_minutes, 1.5)
