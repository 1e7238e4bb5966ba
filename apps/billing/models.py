"""Billing lives in the public schema: one ledger and one set of invoices for the
whole agency, so reporting across clients is a single query."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from apps.billing.metrics import METRIC_CHOICES
from apps.billing.pricing import MetricPrice, PriceModel, Tier
from apps.core.crypto import EncryptedTextField

ZERO = Decimal("0")

NOT_NEGATIVE = MinValueValidator(ZERO, message="Must be zero or more, not negative.")


def validate_positive(value) -> None:
    if value is not None and value <= 0:
        raise ValidationError("Must be more than zero.", code="min_value")


def _non_negative(*fields: str, prefix: str) -> list[models.CheckConstraint]:
    """The database's copy of the NOT_NEGATIVE validators (a shell or raw SQL cannot store nonsense either)."""
    return [
        models.CheckConstraint(condition=Q(**{f"{name}__gte": 0}), name=f"{prefix}_{name}_non_negative")
        for name in fields
    ]


class UsageEvent(models.Model):
    """One metered component of one call (or of a month, for phone numbers).

    Append-only: corrections are new rows or credit notes, never updates.
    `idempotency_key` is unique per client, so a re-sent event -- also two copies
    racing in parallel -- is stored once (INSERT ... ON CONFLICT DO NOTHING)."""

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey("tenancy.Client", on_delete=models.PROTECT, related_name="+", db_index=False)
    idempotency_key = models.CharField(max_length=200)
    call_id = models.CharField(max_length=64, blank=True, help_text="The call's id in the client's schema.")
    metric = models.CharField(max_length=40, choices=METRIC_CHOICES)
    dimension = models.CharField(max_length=100, blank=True, help_text="Model / voice / carrier product.")
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=20)
    provider = models.CharField(max_length=60, blank=True)
    provider_cost = models.DecimalField(max_digits=18, decimal_places=8, default=ZERO)
    provider_cost_currency = models.CharField(max_length=3, default="USD")
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], name="billing_usage_idempotency_key"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="billing_usage_quantity_non_negative"),
        ]
        indexes = [
            models.Index(fields=["client", "occurred_at"], name="billing_usage_client_time"),
            # "this client's rows stored after ledger id N": late usage (services/invoices.py)
            models.Index(fields=["client", "id"], name="billing_usage_client_id"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.quantity} {self.unit} ({self.idempotency_key})"


class UsageMeter(models.Model):
    """Month-to-date usage per client, billing month (client's timezone at ingest),
    metric, dimension and provider-cost currency.

    Derived data, maintained by the ledger INSERT itself (one statement, same
    transaction: see services/usage.py), so it is always consistent with the
    committed ledger and never needs a scan of it. The usage-cap check reads these
    few rows instead of rating the month: call seconds are summed raw (a lower
    bound of what is billed) and rounded per event to 1, 6 and 60 seconds (an
    upper bound for the card's increment; exact when a call reports its seconds in
    one event), so the cap check can tell "certainly below" / "certainly reached"
    without rating, and rates the month exactly only when a cap lies in between."""

    client = models.ForeignKey("tenancy.Client", on_delete=models.CASCADE, related_name="+", db_index=False)
    period_start = models.DateField()
    metric = models.CharField(max_length=40)
    dimension = models.CharField(max_length=100, blank=True)
    cost_currency = models.CharField(max_length=3)
    events = models.BigIntegerField(default=0)
    positive_events = models.BigIntegerField(default=0)
    quantity = models.DecimalField(max_digits=30, decimal_places=6, default=ZERO)
    seconds_ceil_1 = models.DecimalField(max_digits=30, decimal_places=6, default=ZERO)
    seconds_ceil_6 = models.DecimalField(max_digits=30, decimal_places=6, default=ZERO)
    seconds_ceil_60 = models.DecimalField(max_digits=30, decimal_places=6, default=ZERO)
    provider_cost = models.DecimalField(max_digits=30, decimal_places=8, default=ZERO)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "period_start", "metric", "dimension", "cost_currency"], name="billing_usagemeter_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.period_start:%Y-%m} {self.metric}/{self.dimension}: {self.quantity}"


class RateCard(models.Model):
    """A version of a price list. `client` empty = the agency-wide default card.

    A version applies to every billing period starting on or after
    `effective_from` (always the 1st of a month) until the next version; a client
    card's metric rates override the default card's per (metric, dimension), its
    terms (fee, commitment, tax, rounding) replace the default's. Once a period it
    covers is invoiced (finalised) the version is locked: changes need a new
    version, so a closed period is never re-rated."""

    class Increment(models.IntegerChoices):
        PER_SECOND = 1, "per second"
        PER_SIX_SECONDS = 6, "per 6 seconds"
        PER_STARTED_MINUTE = 60, "per started minute"

    client = models.ForeignKey(
        "tenancy.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rate_cards",
        help_text="Empty for the agency-wide default card.",
    )
    name = models.CharField(max_length=120, blank=True)
    effective_from = models.DateField(help_text="The first day of the first billing month it applies to.")
    currency = models.CharField(max_length=3, default="USD")
    platform_fee = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO, validators=[NOT_NEGATIVE])
    minimum_commitment = models.DecimalField(
        max_digits=14, decimal_places=4, default=ZERO, validators=[NOT_NEGATIVE]
    )
    tax_rate_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=ZERO,
        validators=[NOT_NEGATIVE, MaxValueValidator(Decimal(100), message="A tax rate cannot exceed 100 percent.")],
    )
    tax_label = models.CharField(max_length=40, default="Tax")
    call_billing_increment_seconds = models.PositiveIntegerField(
        choices=Increment.choices, default=Increment.PER_SECOND
    )
    call_minimum_seconds = models.PositiveIntegerField(
        default=0, help_text="Minimum billed seconds per connected call."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "effective_from"], name="billing_ratecard_one_version_per_date", nulls_distinct=False
            ),
            models.CheckConstraint(condition=Q(effective_from__day=1), name="billing_ratecard_starts_on_first"),
            *_non_negative("platform_fee", "minimum_commitment", "tax_rate_percent", prefix="billing_ratecard"),
        ]

    def __str__(self) -> str:
        owner = self.client.name if self.client_id else "Agency default"
        return f"{owner} from {self.effective_from:%Y-%m}" + (f" ({self.name})" if self.name else "")


def tier_errors(tiers) -> list[str]:
    """What is wrong with a tiers list (empty list = fine): a list of objects with
    up_to (a number >= 0, or null on the last tier), unit_price and flat_fee (numbers >= 0)."""
    if tiers in (None, ""):
        return []
    if not isinstance(tiers, list):
        return ['Tiers must be a list such as [{"up_to": "1000", "unit_price": "0.05"}, {"up_to": null, ...}].']
    errors = []
    for number, tier in enumerate(tiers, start=1):
        if not isinstance(tier, dict):
            errors.append(f"Tier {number} must be an object with up_to, unit_price and flat_fee.")
            continue
        for key in ("up_to", "unit_price", "flat_fee"):
            raw = tier.get(key)
            if raw is None or raw == "":
                continue  # up_to: unbounded; prices: zero
            try:
                value = Decimal(str(raw))
                if isinstance(raw, bool) or not value.is_finite():
                    raise ValueError
            except (ArithmeticError, ValueError):
                errors.append(f"Tier {number}: {key} must be a number, not {raw!r}.")
                continue
            if value < 0:
                errors.append(f"Tier {number}: {key} must be zero or more, not negative.")
            elif value >= Decimal(10) ** 10:
                errors.append(f"Tier {number}: {key} is too large.")
    return errors


class MetricRate(models.Model):
    """The price of one metric (optionally one dimension of it) on a rate card."""

    rate_card = models.ForeignKey(RateCard, on_delete=models.CASCADE, related_name="rates")
    metric = models.CharField(max_length=40, choices=METRIC_CHOICES)
    dimension = models.CharField(max_length=100, blank=True, help_text="Empty = every dimension without its own rate.")
    model = models.CharField(max_length=16, choices=[(m.value, m.value.replace("_", " ")) for m in PriceModel])
    unit_price = models.DecimalField(
        max_digits=18,
        decimal_places=8,
        default=ZERO,
        validators=[NOT_NEGATIVE],
        help_text="Per priced unit; per package for package pricing.",
    )
    tiers = models.JSONField(
        default=list,
        blank=True,
        help_text='Graduated/volume: [{"up_to": "1000", "unit_price": "0.05", "flat_fee": "0"}, {"up_to": null, "unit_price": "0.04"}]',
    )
    package_size = models.DecimalField(
        max_digits=18, decimal_places=4, default=Decimal(1), validators=[validate_positive]
    )
    markup_percent = models.DecimalField(max_digits=9, decimal_places=4, default=ZERO, validators=[NOT_NEGATIVE])
    included_quantity = models.DecimalField(
        max_digits=18,
        decimal_places=4,
        default=ZERO,
        validators=[NOT_NEGATIVE],
        help_text="Free allowance in priced units.",
    )
    unit_divisor = models.DecimalField(
        max_digits=18,
        decimal_places=4,
        default=Decimal(1),
        validators=[validate_positive],
        help_text="Raw units per priced unit: 60 (seconds per minute), 1000000 (tokens).",
    )
    unit_label = models.CharField(max_length=20, default="unit")
    description = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["metric", "dimension"]
        constraints = [
            models.UniqueConstraint(fields=["rate_card", "metric", "dimension"], name="billing_metricrate_unique"),
            *_non_negative("unit_price", "markup_percent", "included_quantity", prefix="billing_metricrate"),
            models.CheckConstraint(condition=Q(package_size__gt=0), name="billing_metricrate_package_size_positive"),
            models.CheckConstraint(condition=Q(unit_divisor__gt=0), name="billing_metricrate_unit_divisor_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}{'/' + self.dimension if self.dimension else ''}: {self.model}"

    def clean(self) -> None:
        """Tiers (JSON) are checked here; the other fields by their validators. Errors name the field."""
        super().clean()
        errors = tier_errors(self.tiers)
        if errors:
            raise ValidationError({"tiers": errors})

    def to_price(self) -> MetricPrice:
        return MetricPrice(
            metric=self.metric,
            dimension=self.dimension,
            model=PriceModel(self.model),
            unit_price=self.unit_price,
            tiers=tuple(
                Tier(
                    up_to=None if tier.get("up_to") in (None, "") else Decimal(str(tier["up_to"])),
                    unit_price=Decimal(str(tier.get("unit_price", "0"))),
                    flat_fee=Decimal(str(tier.get("flat_fee", "0") or "0")),
                )
                for tier in (self.tiers or [])
            ),
            package_size=self.package_size,
            markup_percent=self.markup_percent,
            included_quantity=self.included_quantity,
            unit_divisor=self.unit_divisor,
            unit_label=self.unit_label,
            description=self.description,
        )


class BillingAccount(models.Model):
    """Per-client billing settings that are not prices: usage caps and the Stripe customer."""

    DEFAULT_CAP_MESSAGE = (
        "Thank you for calling. We are unable to take your call right now. Please try again later. Goodbye."
    )

    client = models.OneToOneField("tenancy.Client", on_delete=models.CASCADE, related_name="billing_account")
    soft_cap_minutes = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[NOT_NEGATIVE]
    )
    hard_cap_minutes = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[NOT_NEGATIVE]
    )
    soft_cap_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[NOT_NEGATIVE],
        help_text="Month-to-date charges, before tax.",
    )
    hard_cap_amount = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[NOT_NEGATIVE]
    )
    cap_message = models.TextField(
        default=DEFAULT_CAP_MESSAGE, help_text="Spoken to callers once the hard cap is reached."
    )
    stripe_customer_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = _non_negative(
            "soft_cap_minutes", "hard_cap_minutes", "soft_cap_amount", "hard_cap_amount", prefix="billing_account"
        )

    def __str__(self) -> str:
        return f"Billing account of {self.client}"


class CapAlert(models.Model):
    """One row the first time a client crosses a cap level in a period (the alert is sent once)."""

    class Level(models.TextChoices):
        SOFT = "soft", "Soft cap"
        HARD = "hard", "Hard cap"

    client = models.ForeignKey("tenancy.Client", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    level = models.CharField(max_length=8, choices=Level.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When agency staff were emailed.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["client", "period_start", "level"], name="billing_capalert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.client} {self.level} cap {self.period_start:%Y-%m}"


class BillingSettings(models.Model):
    """Agency-wide billing settings: one row (branding comes from tenancy.AgencySettings)."""

    invoice_prefix = models.CharField(max_length=12, default="INV-")
    credit_note_prefix = models.CharField(max_length=12, default="CN-")
    payment_terms_days = models.PositiveIntegerField(default=14)
    invoice_footer = models.TextField(blank=True, help_text="Payment instructions printed on every invoice.")
    cap_alert_emails = models.TextField(blank=True, help_text="Comma-separated; empty = all active agency staff.")
    stripe_enabled = models.BooleanField(default=False)
    stripe_secret_key = EncryptedTextField(blank=True)
    stripe_webhook_secret = EncryptedTextField(blank=True)

    class Meta:
        verbose_name = "billing settings"
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return "Billing settings"

    @classmethod
    def load(cls) -> BillingSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class DocumentSequence(models.Model):
    """Gap-free numbering: the row is locked (SELECT ... FOR UPDATE) and bumped in the
    same transaction that finalises the document, so a rolled-back finalisation
    never consumes a number."""

    name = models.CharField(max_length=20, unique=True)  # "invoice", "credit_note"
    last_value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_value}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        FINALISED = "finalised", "Finalised"
        SENT = "sent", "Sent"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    client = models.ForeignKey("tenancy.Client", on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    period_start = models.DateField()
    starts_at = models.DateTimeField(help_text="Local midnight of the 1st, in UTC.")
    ends_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO)
    tax_label = models.CharField(max_length=40, default="Tax")
    tax_rate_percent = models.DecimalField(max_digits=7, decimal_places=4, default=ZERO)
    tax = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO)
    total = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO)
    provider_cost = models.DecimalField(max_digits=18, decimal_places=8, default=ZERO)
    rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    default_rate_card = models.ForeignKey(RateCard, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    credit_note_for = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    reason = models.TextField(blank=True)
    billing_snapshot = models.JSONField(default=dict, blank=True, help_text="Client billing details at finalisation.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finalised_at = models.DateTimeField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="billing/invoices/", blank=True)
    usage_csv = models.FileField(upload_to="billing/usage/", blank=True)
    stripe_invoice_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    stripe_hosted_url = models.URLField(max_length=500, blank=True)
    usage_through_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Ledger rows of the period with an id up to this one are billed on this invoice; "
        "later ones are late usage, carried into the next invoice.",
    )
    late_usage_windows = models.JSONField(
        default=list,
        blank=True,
        help_text='Late usage carried here: [{"period_start": "2026-11-01", "after_id": 10, "through_id": 99}] = '
        "ledger rows of that month with after_id < id <= through_id.",
    )

    class Meta:
        ordering = ["-period_start", "client__name"]
        constraints = [
            # One live invoice per client and month: regeneration finds it instead of adding another.
            models.UniqueConstraint(
                fields=["client", "period_start"],
                condition=Q(kind="invoice") & ~Q(status="void"),
                name="billing_invoice_one_per_period",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False), name="billing_invoice_numbered_when_final"
            ),
        ]
        indexes = [models.Index(fields=["status", "period_start"], name="billing_invoice_status_period")]

    def __str__(self) -> str:
        return self.number or f"Draft {self.kind} {self.client} {self.period_start:%Y-%m}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)  # pricing.LineKind
    metric = models.CharField(max_length=40, blank=True)
    dimension = models.CharField(max_length=100, blank=True)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=24, decimal_places=8)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    provider_cost = models.DecimalField(max_digits=18, decimal_places=8, default=ZERO)

    class Meta:
        ordering = ["invoice_id", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="billing_invoiceline_position")]

    def __str__(self) -> str:
        return self.description


class StripeEvent(models.Model):
    """Every Stripe webhook event we processed; the unique id turns replays into no-ops."""

    event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="stripe_events")
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
