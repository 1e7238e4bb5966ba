"""Billing reads. Aggregation happens in PostgreSQL (GROUP BY / SUM), never by
looping over usage rows in Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from apps.billing.metrics import CALL_SECONDS_METRICS
from apps.billing.models import BillingAccount, Invoice, InvoiceLine, RateCard
from apps.billing.money import ZERO, quantize
from apps.billing.periods import format_period, period_bounds, period_containing
from apps.billing.pricing import (
    CardTerms,
    Line,
    LineKind,
    MetricPrice,
    RatedInvoice,
    UsageTotal,
    merge_prices,
    rate_invoice,
)
from apps.core.errors import ApplicationError

# ----------------------------------------------------------------------------- rate cards


@dataclass(frozen=True)
class ResolvedCard:
    """The terms and prices that apply to one client for one period."""

    terms: CardTerms
    prices: tuple[MetricPrice, ...]
    call_increment_seconds: int
    call_minimum_seconds: int
    client_card: RateCard | None
    default_card: RateCard | None


def rate_card_versions(*, client) -> QuerySet[RateCard]:
    """Every version of a client's card (client None: the agency default card)."""
    if client is None:
        return RateCard.objects.filter(client__isnull=True)
    return RateCard.objects.filter(client=client)


def rate_card_in_force(*, client, period_start: date) -> RateCard | None:
    """The client's own card version in force at the period start (None if it has none)."""
    return RateCard.objects.filter(client=client, effective_from__lte=period_start).order_by("-effective_from").first()


def default_rate_card_in_force(*, period_start: date) -> RateCard | None:
    return (
        RateCard.objects.filter(client__isnull=True, effective_from__lte=period_start)
        .order_by("-effective_from")
        .first()
    )


def rate_card_resolve(*, client, period_start: date) -> ResolvedCard:
    client_card = rate_card_in_force(client=client, period_start=period_start)
    default_card = default_rate_card_in_force(period_start=period_start)
    terms_card = client_card or default_card
    if terms_card is None:
        raise ApplicationError(
            f"No rate card applies to {client} for {period_start:%Y-%m}: create an agency default rate card "
            "(Billing > Rate cards, client empty) or one for this client effective from that month or earlier.",
            details={"client": client.slug, "period": f"{period_start:%Y-%m}"},
        )
    default_prices = [rate.to_price() for rate in default_card.rates.all()] if default_card else []
    client_prices = [rate.to_price() for rate in client_card.rates.all()] if client_card else []
    if client_card and default_card and client_card.currency != default_card.currency:
        # Default prices are in another currency: they cannot be inherited.
        default_prices = []
    return ResolvedCard(
        terms=CardTerms(
            currency=terms_card.currency,
            platform_fee=terms_card.platform_fee,
            minimum_commitment=terms_card.minimum_commitment,
            tax_rate_percent=terms_card.tax_rate_percent,
            tax_label=terms_card.tax_label,
        ),
        prices=tuple(merge_prices(default_prices, client_prices)),
        call_increment_seconds=terms_card.call_billing_increment_seconds,
        call_minimum_seconds=terms_card.call_minimum_seconds,
        client_card=client_card,
        default_card=default_card,
    )


def invoices_closed() -> QuerySet[Invoice]:
    """Invoices (not credit notes) that fix a period's prices: neither draft nor void."""
    return Invoice.objects.filter(kind=Invoice.Kind.INVOICE).exclude(
        status__in=[Invoice.Status.DRAFT, Invoice.Status.VOID]
    )


def invoiced_from(*, client_id: int | None, period_start: date) -> bool:
    """Whether `period_start` or a later month is already invoiced, for one client
    or (client_id None) for any client."""
    invoices = invoices_closed().filter(period_start__gte=period_start)
    if client_id is not None:
        invoices = invoices.filter(client_id=client_id)
    return invoices.exists()


def rate_card_is_locked(*, card: RateCard) -> bool:
    """A card version is locked once any period it may cover has a non-draft invoice."""
    return invoiced_from(client_id=card.client_id, period_start=card.effective_from)


# ----------------------------------------------------------------------------- usage aggregation

_AGGREGATE_SQL = """
WITH per_group AS (
    -- one pass over the client's rows in the period; call seconds are grouped per call
    -- (a call may report several parts) so the rounding rule applies per call
    SELECT metric, dimension,
           CASE WHEN metric = ANY(%(call_metrics)s) THEN COALESCE(NULLIF(call_id, ''), id::text) END AS call_key,
           SUM(quantity) AS quantity,
           SUM(provider_cost) FILTER (WHERE provider_cost_currency = %(currency)s) AS cost,
           COUNT(*) FILTER (WHERE provider_cost_currency <> %(currency)s AND provider_cost <> 0) AS foreign_cost
    FROM public.billing_usageevent
    WHERE client_id = %(client_id)s AND occurred_at >= %(start)s AND occurred_at < %(end)s{id_filters}
    GROUP BY 1, 2, 3
)
SELECT metric, dimension,
       SUM(CASE WHEN call_key IS NULL THEN quantity
                WHEN quantity <= 0 THEN 0
                ELSE GREATEST(%(minimum)s::numeric, CEIL(quantity / %(increment)s::numeric) * %(increment)s::numeric)
           END) AS quantity,
       COALESCE(SUM(cost), 0), SUM(foreign_cost), SUM(quantity) AS raw_quantity
FROM per_group
GROUP BY metric, dimension
"""


@dataclass(frozen=True)
class UsageSummary:
    totals: tuple[UsageTotal, ...]
    raw_quantities: dict[tuple[str, str], Decimal]
    foreign_cost_events: int  # events whose provider cost is in another currency (not in margins)


@dataclass(frozen=True)
class LedgerIds:
    """Which ledger rows count, by id: after_id < id <= through_id, outside `excluded`
    ((after, through] ranges). Ids order the rows as they were stored (see
    services/invoices.py for why that is safe under concurrent ingestion)."""

    after_id: int | None = None
    through_id: int | None = None
    excluded: tuple[tuple[int, int], ...] = ()

    def sql(self) -> tuple[str, dict]:
        clauses, params = [], {}
        if self.after_id is not None:
            clauses.append("id > %(after_id)s")
            params["after_id"] = self.after_id
        if self.through_id is not None:
            clauses.append("id <= %(through_id)s")
            params["through_id"] = self.through_id
        if self.excluded:
            clauses.append(
                "NOT EXISTS (SELECT 1 FROM unnest(%(ex_after)s::bigint[], %(ex_through)s::bigint[]) AS r(a, t) "
                "WHERE id > r.a AND id <= r.t)"
            )
            params["ex_after"] = [after for after, _ in self.excluded]
            params["ex_through"] = [through for _, through in self.excluded]
        return "".join(f" AND {clause}" for clause in clauses), params


ALL_ROWS = LedgerIds()


def usage_totals(
    *,
    client_id: int,
    start: datetime,
    end: datetime,
    currency: str,
    increment: int,
    minimum: int,
    ids: LedgerIds = ALL_ROWS,
) -> UsageSummary:
    """Per (metric, dimension) totals for [start, end), call seconds rounded per call."""
    from apps.billing.metrics import METRIC_UNITS

    id_filters, id_params = ids.sql()
    with connection.cursor() as cursor:
        cursor.execute(
            _AGGREGATE_SQL.format(id_filters=id_filters),
            {
                "client_id": client_id,
                "start": start,
                "end": end,
                "currency": currency,
                "increment": increment,
                "minimum": minimum,
                "call_metrics": sorted(CALL_SECONDS_METRICS),
                **id_params,
            },
        )
        rows = cursor.fetchall()
    totals = []
    raw = {}
    foreign = 0
    for metric, dimension, quantity, cost, foreign_cost, raw_quantity in rows:
        totals.append(
            UsageTotal(
                metric=metric,
                dimension=dimension,
                quantity=Decimal(quantity),
                provider_cost=Decimal(cost),
                unit=METRIC_UNITS.get(metric, ""),
            )
        )
        raw[(metric, dimension)] = Decimal(raw_quantity)
        foreign += int(foreign_cost or 0)
    return UsageSummary(totals=tuple(totals), raw_quantities=raw, foreign_cost_events=foreign)


@dataclass(frozen=True)
class PeriodRating:
    period_start: date
    starts_at: datetime
    ends_at: datetime
    card: ResolvedCard
    usage: UsageSummary
    rated: RatedInvoice


def period_rate(
    *, client, period_start: date, until: datetime | None = None, ids: LedgerIds = ALL_ROWS
) -> PeriodRating:
    """Rate a client's usage for a period (or the part of it before `until`, or the
    ledger rows `ids` selects)."""
    card = rate_card_resolve(client=client, period_start=period_start)
    starts_at, ends_at = period_bounds(period_start, client.timezone)
    usage = usage_totals(
        client_id=client.pk,
        start=starts_at,
        end=min(ends_at, until) if until else ends_at,
        currency=card.terms.currency,
        increment=card.call_increment_seconds,
        minimum=card.call_minimum_seconds,
        ids=ids,
    )
    rated = rate_invoice(terms=card.terms, prices=card.prices, usage=usage.totals)
    return PeriodRating(period_start, starts_at, ends_at, card, usage, rated)


# ----------------------------------------------------------------------------- late usage


@dataclass(frozen=True)
class LateWindow:
    """Ledger rows of an already-invoiced month that its invoice did not bill:
    after_id < id <= through_id, occurred in `period_start`."""

    period_start: date
    after_id: int
    through_id: int

    def as_json(self) -> dict:
        return {"period_start": self.period_start.isoformat(), "after_id": self.after_id, "through_id": self.through_id}

    @classmethod
    def from_json(cls, data: dict) -> LateWindow:
        return cls(date.fromisoformat(data["period_start"]), int(data["after_id"]), int(data["through_id"]))


def _carried_windows(*, client_id: int, exclude_invoice_id: int | None = None) -> list[LateWindow]:
    """Every window of late usage that a closed invoice of the client carried."""
    stored = invoices_closed().filter(client_id=client_id).exclude(late_usage_windows=[])
    if exclude_invoice_id is not None:
        stored = stored.exclude(pk=exclude_invoice_id)
    return [LateWindow.from_json(w) for windows in stored.values_list("late_usage_windows", flat=True) for w in windows]


def carried_ranges(*, client_id: int, period_start: date) -> tuple[tuple[int, int], ...]:
    """(after, through] ranges of `period_start`'s rows that later invoices already billed as late usage."""
    return tuple(
        (w.after_id, w.through_id)
        for w in _carried_windows(client_id=client_id)
        if w.period_start == period_start
    )


def late_usage_windows(*, client, period_start: date, through_id: int, invoice_id: int | None = None) -> list[LateWindow]:
    """Late usage to carry into the invoice of `period_start` (billing rows up to
    `through_id`): for every earlier month with a closed invoice, its rows above
    both that invoice's own bound and every window already carried for it.
    Only months that really have such rows are returned."""
    closed = invoices_closed().filter(
        client_id=client.pk, period_start__lt=period_start, usage_through_id__isnull=False
    )
    billed_through = dict(closed.values_list("period_start", "usage_through_id"))
    if not billed_through:
        return []
    for window in _carried_windows(client_id=client.pk, exclude_invoice_id=invoice_id):
        if window.period_start in billed_through:
            billed_through[window.period_start] = max(billed_through[window.period_start], window.through_id)
    lowest = min(billed_through.values())
    if lowest >= through_id:
        return []
    starts_at, _ = period_bounds(period_start, client.timezone)
    with connection.cursor() as cursor:
        # The client's rows stored since the lowest bound that belong to earlier months
        # (index on (client_id, id)), grouped by their month in the client's timezone.
        cursor.execute(
            """
            SELECT date_trunc('month', occurred_at AT TIME ZONE %s)::date AS month, max(id)
            FROM public.billing_usageevent
            WHERE client_id = %s AND id > %s AND id <= %s AND occurred_at < %s
            GROUP BY 1
            """,
            [str(client.timezone), client.pk, lowest, through_id, starts_at],
        )
        candidates = cursor.fetchall()
    windows = []
    for month, newest in sorted(candidates):
        after = billed_through.get(month)
        if after is not None and newest > after:
            windows.append(LateWindow(month, after, through_id))
    return windows


def late_usage_lines(*, client, windows: list[LateWindow], currency: str) -> list[Line]:
    """One dated line per metric of each late window, priced by the rate card of
    the month the usage belongs to, as the increase it makes to that month's usage
    charges: rating(rows through through_id) - rating(rows through after_id), so
    tiers, allowances and per-call rounding continue where that month's invoice
    (and any earlier carry) stopped. Fee, minimum and tax are not repeated."""
    from apps.billing.periods import format_period_long

    lines: list[Line] = []
    for window in windows:
        before = period_rate(client=client, period_start=window.period_start, ids=LedgerIds(through_id=window.after_id))
        after = period_rate(client=client, period_start=window.period_start, ids=LedgerIds(through_id=window.through_id))
        if after.rated.currency != currency:
            raise ApplicationError(
                f"Late usage from {window.period_start:%Y-%m} is priced in {after.rated.currency}, this invoice "
                f"in {currency}: bill it with a manual invoice or a credit note.",
                details={"period": f"{window.period_start:%Y-%m}"},
            )
        previous = _usage_by_metric(before.rated.lines)
        month = format_period_long(window.period_start)
        for key, (usage_line, amount, cost) in _usage_by_metric(after.rated.lines).items():
            old_line, old_amount, old_cost = previous.get(key, (None, ZERO, ZERO))
            quantity = usage_line.quantity - (old_line.quantity if old_line else ZERO)
            if not quantity and amount == old_amount:
                continue
            lines.append(
                Line(
                    kind=LineKind.LATE_USAGE,
                    description=f"Usage from {month}: {usage_line.description}",
                    quantity=quantity,
                    unit=usage_line.unit,
                    unit_price=usage_line.unit_price,
                    amount=amount - old_amount,
                    metric=usage_line.metric,
                    dimension=usage_line.dimension,
                    provider_cost=cost - old_cost,
                )
            )
    return lines


def _usage_by_metric(lines) -> dict[tuple[str, str], tuple[Line, Decimal, Decimal]]:
    """(metric, dimension) -> (its usage line, usage + allowance amount, provider cost)."""
    grouped: dict[tuple[str, str], tuple[Line, Decimal, Decimal]] = {}
    for line in lines:
        if line.kind not in (LineKind.USAGE, LineKind.ALLOWANCE):
            continue
        key = (line.metric, line.dimension)
        usage_line, amount, cost = grouped.get(key, (line, ZERO, ZERO))
        grouped[key] = (line if line.kind == LineKind.USAGE else usage_line, amount + line.amount, cost + line.provider_cost)
    return grouped


# ----------------------------------------------------------------------------- caps


@dataclass(frozen=True)
class CapStatus:
    """What the call runtime needs at call start. `allowed` is False only at the hard cap."""

    state: str  # "allowed" | "soft" | "hard"
    message: str = ""
    minutes_used: Decimal = ZERO
    amount_used: Decimal = ZERO
    currency: str = ""
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return self.state != "hard"


ALLOWED = CapStatus(state="allowed")


def _cap_account(client) -> BillingAccount | None:
    account = BillingAccount.objects.filter(client_id=client.pk).first()
    if account is None or all(
        value is None
        for value in (
            account.soft_cap_minutes,
            account.hard_cap_minutes,
            account.soft_cap_amount,
            account.hard_cap_amount,
        )
    ):
        return None
    return account


def _cap_status_from(account, minutes: Decimal, amount: Decimal, currency: str, *, reached) -> CapStatus:
    """`reached(kind, cap)` says whether `cap` of kind "minutes" / "amount" is reached."""
    hard, soft = [], []
    if account.hard_cap_minutes is not None and reached("minutes", account.hard_cap_minutes):
        hard.append(f"{minutes:.2f} of {account.hard_cap_minutes} minutes (hard cap)")
    if account.hard_cap_amount is not None and reached("amount", account.hard_cap_amount):
        hard.append(f"{amount} of {account.hard_cap_amount} {currency} (hard cap)")
    if account.soft_cap_minutes is not None and reached("minutes", account.soft_cap_minutes):
        soft.append(f"{minutes:.2f} of {account.soft_cap_minutes} minutes (soft cap)")
    if account.soft_cap_amount is not None and reached("amount", account.soft_cap_amount):
        soft.append(f"{amount} of {account.soft_cap_amount} {currency} (soft cap)")
    if hard:
        return CapStatus("hard", account.cap_message, minutes, amount, currency, tuple(hard))
    if soft:
        return CapStatus("soft", "Soft usage cap reached: " + "; ".join(soft), minutes, amount, currency, tuple(soft))
    return CapStatus("allowed", "", minutes, amount, currency)


def _usage_charges(lines) -> Decimal:
    return sum((line.amount for line in lines if line.kind in (LineKind.USAGE, LineKind.ALLOWANCE)), ZERO)


def usage_cap_status_exact(*, client, at: datetime | None = None) -> CapStatus:
    """The caps against a full rating of the month so far (one aggregate over the
    client's ledger rows of the month). The cheap `usage_cap_status` falls back
    to this only when a cap lies between its bounds."""
    account = _cap_account(client)
    if account is None:
        return ALLOWED
    at = at or timezone.now()
    period_start = period_containing(at, client.timezone)
    try:
        rating = period_rate(client=client, period_start=period_start, until=None)
    except ApplicationError:
        return ALLOWED  # no rate card: nothing to measure money against; minutes unknown too
    seconds = sum((t.quantity for t in rating.usage.totals if t.metric in CALL_SECONDS_METRICS), ZERO)
    minutes = seconds / 60
    currency = rating.card.terms.currency
    amount = quantize(_usage_charges(rating.rated.lines), currency)
    figures = {"minutes": minutes, "amount": amount}
    return _cap_status_from(account, minutes, amount, currency, reached=lambda kind, cap: figures[kind] >= cap)


@dataclass(frozen=True)
class UsageBounds:
    """Month-to-date figures known to lie in [low, high] (from models.UsageMeter)."""

    minutes_low: Decimal
    minutes_high: Decimal
    amount_low: Decimal
    amount_high: Decimal
    currency: str


_CEIL_COLUMN = {1: "seconds_ceil_1", 6: "seconds_ceil_6", 60: "seconds_ceil_60"}


def _amount_bounds(card: ResolvedCard, low: list[UsageTotal], high: list[UsageTotal]) -> tuple[Decimal, Decimal]:
    """Usage charges (after allowances) for the low and high quantities. Every price
    model but volume is non-decreasing in the quantity, so rating the bounds bounds
    the charge; a volume price can drop when the total reaches a cheaper tier, so
    its charge is bounded by hand: >= 0 and <= quantity x dearest tier + largest flat fee."""
    from apps.billing.pricing import PriceModel, find_price, priced_quantity, rate_usage

    currency = card.terms.currency
    low_amount, high_amount = ZERO, ZERO
    for low_total, high_total in zip(low, high, strict=True):
        price = find_price(card.prices, high_total.metric, high_total.dimension)
        if price is None:
            continue  # listed at 0.00
        if price.model == PriceModel.VOLUME:
            dearest = max(tier.unit_price for tier in price.tiers)
            flat = max(tier.flat_fee for tier in price.tiers)
            high_amount += quantize(priced_quantity(price, high_total.quantity) * dearest + flat, currency)
            continue
        low_amount += _usage_charges(rate_usage(price, low_total, currency))
        high_amount += _usage_charges(rate_usage(price, high_total, currency))
    return low_amount, high_amount


def usage_bounds(*, client, card: ResolvedCard, period_start: date) -> UsageBounds:
    """Bounds of the month-to-date billable minutes and usage charges from the few
    meter rows of the month -- no ledger scan. Call seconds: at least the raw sum
    (rounding only adds), at most the sum of per-event rounding to the card's
    increment plus the card's minimum per event (per-call rounding of a call
    reported in several parts never exceeds the sum of its parts rounded)."""
    from apps.billing.models import UsageMeter

    increment, minimum = card.call_increment_seconds, card.call_minimum_seconds
    ceil_column = _CEIL_COLUMN.get(increment)
    rows = UsageMeter.objects.filter(client_id=client.pk, period_start=period_start).values_list(
        "metric",
        "dimension",
        "cost_currency",
        "quantity",
        "positive_events",
        "provider_cost",
        ceil_column or "quantity",
    )
    grouped: dict[tuple[str, str], list[Decimal]] = {}
    for metric, dimension, cost_currency, quantity, positive, cost, ceiled in rows:
        entry = grouped.setdefault((metric, dimension), [ZERO, ZERO, ZERO])
        entry[0] += quantity
        if metric in CALL_SECONDS_METRICS:
            # an increment without its own column: each event adds less than one increment
            ceiled = ceiled if ceil_column else quantity + positive * increment
            entry[1] += ceiled + positive * minimum
        else:
            entry[1] += quantity
        if cost_currency == card.terms.currency:
            entry[2] += cost
    low, high = [], []
    for (metric, dimension), (quantity, quantity_high, cost) in sorted(grouped.items()):
        low.append(UsageTotal(metric=metric, dimension=dimension, quantity=quantity, provider_cost=cost))
        high.append(UsageTotal(metric=metric, dimension=dimension, quantity=quantity_high, provider_cost=cost))
    amount_low, amount_high = _amount_bounds(card, low, high)
    seconds_low = sum((t.quantity for t in low if t.metric in CALL_SECONDS_METRICS), ZERO)
    seconds_high = sum((t.quantity for t in high if t.metric in CALL_SECONDS_METRICS), ZERO)
    return UsageBounds(seconds_low / 60, seconds_high / 60, amount_low, amount_high, card.terms.currency)


def usage_cap_status(*, client, at: datetime | None = None, exact: bool = False) -> CapStatus:
    """Month-to-date usage of `client` against its caps (call start, after usage lands).

    Minutes = billable call minutes (inbound + outbound, after the per-call rounding
    rule). Money = month-to-date usage charges after allowances, before platform fee,
    minimum commitment and tax. Hard beats soft; no caps configured = "allowed"
    without touching the ledger.

    Cheap by default: bounds from the month-to-date meter decide every cap that is
    certainly below or certainly reached (minutes_used / amount_used are then the
    lower bounds); only when a cap lies between the bounds is the month rated in
    full (`usage_cap_status_exact`, also used with exact=True).
    """
    if exact:
        return usage_cap_status_exact(client=client, at=at)
    account = _cap_account(client)
    if account is None:
        return ALLOWED
    at = at or timezone.now()
    period_start = period_containing(at, client.timezone)
    try:
        card = rate_card_resolve(client=client, period_start=period_start)
    except ApplicationError:
        return ALLOWED
    bounds = usage_bounds(client=client, card=card, period_start=period_start)
    ranges = {
        "minutes": (bounds.minutes_low, bounds.minutes_high),
        "amount": (bounds.amount_low, bounds.amount_high),
    }
    caps = (
        ("minutes", account.hard_cap_minutes),
        ("minutes", account.soft_cap_minutes),
        ("amount", account.hard_cap_amount),
        ("amount", account.soft_cap_amount),
    )
    for kind, cap in caps:
        if cap is not None and ranges[kind][0] < cap <= ranges[kind][1]:
            return usage_cap_status_exact(client=client, at=at)  # near a cap: rate the month
    amount = quantize(bounds.amount_low, bounds.currency)
    return _cap_status_from(
        account, bounds.minutes_low, amount, bounds.currency, reached=lambda kind, cap: ranges[kind][0] >= cap
    )


# ----------------------------------------------------------------------------- invoices


def invoice_list(*, client=None, period_start: date | None = None) -> QuerySet[Invoice]:
    invoices = Invoice.objects.select_related("client")
    if client is not None:
        invoices = invoices.filter(client_id=client.pk)
    if period_start is not None:
        invoices = invoices.filter(period_start=period_start)
    return invoices


def invoice_list_for_portal(*, client) -> QuerySet[Invoice]:
    """What a client sees: everything but drafts."""
    return invoice_list(client=client).exclude(status=Invoice.Status.DRAFT).order_by("-period_start", "-id")


def invoice_get_for(*, client, invoice_id: int) -> Invoice:
    invoice = invoice_list_for_portal(client=client).filter(pk=invoice_id).first()
    if invoice is None:
        from apps.core.errors import NotFound

        raise NotFound("No such invoice for this client.")
    return invoice


def invoice_for_period(*, client, period_start: date) -> Invoice | None:
    return (
        Invoice.objects.filter(client_id=client.pk, period_start=period_start, kind=Invoice.Kind.INVOICE)
        .exclude(status=Invoice.Status.VOID)
        .first()
    )


# ----------------------------------------------------------------------------- margins


@dataclass(frozen=True)
class MarginRow:
    label: str
    metric: str
    dimension: str
    revenue: Decimal
    cost: Decimal

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.margin / self.revenue * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class MarginReport:
    client_id: int
    client_name: str
    period_start: date
    currency: str
    rows: tuple[MarginRow, ...]
    source: str  # "invoice <number>" or "live rating"
    foreign_cost_events: int = 0

    @property
    def revenue(self) -> Decimal:
        return sum((row.revenue for row in self.rows), ZERO)

    @property
    def cost(self) -> Decimal:
        return sum((row.cost for row in self.rows), ZERO)

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


def _margin_rows(lines) -> tuple[MarginRow, ...]:
    """Group lines by metric/dimension; allowance lines reduce that metric's revenue,
    fee and minimum are their own rows (revenue with no cost)."""
    rows: dict[tuple[str, str, str], list[Decimal]] = {}
    labels: dict[tuple[str, str, str], str] = {}
    for line in lines:
        key = (line.metric, line.dimension, "" if line.metric else line.kind)
        entry = rows.setdefault(key, [ZERO, ZERO])
        entry[0] += line.amount
        entry[1] += line.provider_cost
        if line.kind != LineKind.ALLOWANCE or key not in labels:
            labels[key] = (
                line.description
                if line.kind != LineKind.ALLOWANCE
                else line.description.removeprefix("Included allowance: ")
            )
    return tuple(
        MarginRow(label=labels[key], metric=key[0], dimension=key[1], revenue=values[0], cost=values[1])
        for key, values in rows.items()
    )


def margin_report(*, client, period_start: date) -> MarginReport:
    """Revenue vs provider cost per metric. A finalised invoice is the source of
    truth for a closed period; an open period is rated live from the ledger."""
    invoice = invoice_for_period(client=client, period_start=period_start)
    if invoice is not None and not invoice.is_draft:
        lines = list(InvoiceLine.objects.filter(invoice=invoice))
        return MarginReport(
            client.pk, client.name, period_start, invoice.currency, _margin_rows(lines), f"invoice {invoice.number}"
        )
    rating = period_rate(client=client, period_start=period_start)
    return MarginReport(
        client.pk,
        client.name,
        period_start,
        rating.rated.currency,
        _margin_rows(rating.rated.lines),
        "live rating",
        rating.usage.foreign_cost_events,
    )


def margin_overview(*, period_start: date) -> list[MarginReport]:
    from apps.tenancy.selectors import client_list

    reports = []
    for client in client_list():
        try:
            reports.append(margin_report(client=client, period_start=period_start))
        except ApplicationError:
            continue  # no rate card: nothing to report
    return reports


def clients_to_invoice() -> QuerySet:
    from apps.tenancy.selectors import client_list

    return client_list(include_suspended=False).order_by("pk")


def invoice_generation_failure_key(*, client_id: int, period: str) -> str:
    """Where a failed generation leaves its message (the cache) for the progress page."""
    return f"billing:invoice-generate:{period}:{client_id}"


@dataclass(frozen=True)
class GenerationRow:
    client: object
    invoice: Invoice | None
    state: str  # waiting | draft | finalised | documents | failed
    error: str = ""

    @property
    def done(self) -> bool:
        return self.state in ("documents", "failed")


def invoice_generation_progress(*, period_start: date, finalize: bool = True) -> list[GenerationRow]:
    """Where each client's invoice for `period_start` stands, derived from the invoices themselves
    (and the failure a task left in the cache): what the admin's progress page shows."""
    from django.core.cache import cache

    invoices = {i.client_id: i for i in Invoice.objects.filter(kind=Invoice.Kind.INVOICE, period_start=period_start)
                .exclude(status=Invoice.Status.VOID).order_by("pk")}
    rows = []
    for client in clients_to_invoice():
        invoice = invoices.get(client.pk)
        error = cache.get(invoice_generation_failure_key(client_id=client.pk, period=format_period(period_start)), "")
        if invoice is None:
            state = "failed" if error else "waiting"
        elif invoice.is_draft:
            state = "documents" if not finalize else ("failed" if error else "draft")
        else:
            state = "documents" if invoice.pdf else "finalised"
        rows.append(GenerationRow(client=client, invoice=invoice, state=state, error=error))
    return rows


# ----------------------------------------------------------------------------- portal and console figures
# Read-only views of the numbers above for the client portal (month to date, per call) and the agency's
# overview. They rate with the same card resolution and pricing functions as invoices.


@dataclass(frozen=True)
class MonthToDate:
    """A client's month so far: the estimated invoice and its usage against the caps."""

    period_start: date
    currency: str
    estimated_total: Decimal | None  # None: no rate card applies
    usage_amount: Decimal  # usage charges after allowances, before fee, minimum and tax
    billable_minutes: Decimal
    provider_cost: Decimal
    cap_minutes: Decimal | None  # the hard cap, else the soft cap
    cap_amount: Decimal | None
    cap_state: str  # "allowed" | "soft" | "hard"

    @property
    def cap_percent(self) -> int | None:
        """The larger share of a cap used, 0-100 (capped), None without caps."""
        shares = []
        if self.cap_minutes:
            shares.append(self.billable_minutes / self.cap_minutes)
        if self.cap_amount:
            shares.append(self.usage_amount / self.cap_amount)
        if not shares:
            return None
        return int(min(max(shares) * 100, Decimal(100)))

    @property
    def margin(self) -> Decimal | None:
        if self.estimated_total is None:
            return None
        return self.usage_amount - self.provider_cost


def month_to_date(*, client, at: datetime | None = None) -> MonthToDate:
    """The estimated invoice of the month containing `at` (default now) up to `at`."""
    at = at or timezone.now()
    period_start = period_containing(at, client.timezone)
    account = BillingAccount.objects.filter(client_id=client.pk).first()
    cap_minutes = cap_amount = None
    if account is not None:
        cap_minutes = account.hard_cap_minutes if account.hard_cap_minutes is not None else account.soft_cap_minutes
        cap_amount = account.hard_cap_amount if account.hard_cap_amount is not None else account.soft_cap_amount
    try:
        rating = period_rate(client=client, period_start=period_start, until=at)
    except ApplicationError:
        return MonthToDate(period_start, "", None, ZERO, ZERO, ZERO, cap_minutes, cap_amount, "allowed")
    currency = rating.card.terms.currency
    seconds = sum((t.quantity for t in rating.usage.totals if t.metric in CALL_SECONDS_METRICS), ZERO)
    usage_amount = quantize(
        sum((line.amount for line in rating.rated.lines if line.kind in (LineKind.USAGE, LineKind.ALLOWANCE)), ZERO),
        currency,
    )
    provider_cost = quantize(sum((t.provider_cost for t in rating.usage.totals), ZERO), currency)
    state = "allowed"
    for level in ("soft", "hard"):
        minutes_cap = getattr(account, f"{level}_cap_minutes", None)
        amount_cap = getattr(account, f"{level}_cap_amount", None)
        if (minutes_cap is not None and seconds / 60 >= minutes_cap) or (
            amount_cap is not None and usage_amount >= amount_cap
        ):
            state = level
    return MonthToDate(
        period_start=period_start,
        currency=currency,
        estimated_total=rating.rated.total,
        usage_amount=usage_amount,
        billable_minutes=(seconds / 60).quantize(Decimal("0.01")),
        provider_cost=provider_cost,
        cap_minutes=cap_minutes,
        cap_amount=cap_amount,
        cap_state=state,
    )


@dataclass(frozen=True)
class CallCostLine:
    metric: str
    dimension: str
    description: str
    quantity: Decimal  # in the price's unit (minutes, tokens...)
    unit: str
    amount: Decimal


@dataclass(frozen=True)
class CallCost:
    currency: str
    lines: tuple[CallCostLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def call_costs(*, client, calls: list[tuple[str, datetime]]) -> dict[str, CallCost]:
    """What each call costs at the client's list prices (its rate card for the call's month), by component.

    `calls` is (call id, when it happened). Allowances, platform fee, minimum and tax are monthly and left out:
    this is the price of the call itself. Calls with no rate card for their month are left out."""
    from collections import defaultdict

    from django.db.models import Sum

    from apps.billing.models import UsageEvent
    from apps.billing.pricing import billable_call_seconds, find_price, priced_quantity, rate_quantity

    if not calls:
        return {}
    when = {str(call_id): moment for call_id, moment in calls}
    rows = (
        UsageEvent.objects.filter(client_id=client.pk, call_id__in=list(when))
        .values("call_id", "metric", "dimension")
        .annotate(quantity=Sum("quantity"), provider_cost=Sum("provider_cost"))
        .order_by("call_id", "metric", "dimension")
    )
    cards: dict[date, ResolvedCard | None] = {}
    per_call: dict[str, list[CallCostLine]] = defaultdict(list)
    currencies: dict[str, str] = {}
    for row in rows:
        period_start = period_containing(when[row["call_id"]], client.timezone)
        if period_start not in cards:
            try:
                cards[period_start] = rate_card_resolve(client=client, period_start=period_start)
            except ApplicationError:
                cards[period_start] = None
        card = cards[period_start]
        if card is None:
            continue
        price = find_price(card.prices, row["metric"], row["dimension"])
        if price is None:
            continue
        quantity = Decimal(row["quantity"])
        if row["metric"] in CALL_SECONDS_METRICS:
            quantity = billable_call_seconds(
                quantity, increment=card.call_increment_seconds, minimum=card.call_minimum_seconds
            )
        units = priced_quantity(price, quantity)
        amount = quantize(
            rate_quantity(price, units, provider_cost=Decimal(row["provider_cost"] or 0)), card.terms.currency
        )
        currencies[row["call_id"]] = card.terms.currency
        per_call[row["call_id"]].append(
            CallCostLine(
                metric=row["metric"],
                dimension=row["dimension"],
                description=price.description or row["metric"].replace("_", " ").capitalize(),
                quantity=units,
                unit=price.unit_label,
                amount=amount,
            )
        )
    return {call_id: CallCost(currencies[call_id], tuple(lines)) for call_id, lines in per_call.items()}


def rate_card_next_version_start(*, card: RateCard) -> date:
    """Where a copy of `card` as a new version may start: the month after the owner's latest version and after
    today's month, and after any invoiced month."""
    from apps.billing.periods import next_period

    latest = RateCard.objects.filter(client_id=card.client_id).order_by("-effective_from").first()
    start = next_period(max(latest.effective_from if latest else card.effective_from, timezone.localdate()))
    while invoiced_from(client_id=card.client_id, period_start=start):
        start = next_period(start)
    return start
