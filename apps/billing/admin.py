"""Agency admin for billing (public schema): rate cards, invoices (+ PDF / CSV
downloads, finalise / paid / void / Stripe actions), usage, caps, margins."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, re_path, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.billing import selectors, services
from apps.billing.models import (
    BillingAccount,
    BillingSettings,
    CapAlert,
    Invoice,
    InvoiceLine,
    MetricRate,
    RateCard,
    StripeEvent,
    UsageEvent,
)
from apps.billing.periods import format_period, parse_period, previous_period
from apps.billing.pricing import PricingError
from apps.core.admin_widgets import PlainDecimalInput, compact_inline_widgets
from apps.core.errors import ApplicationError


class MetricRateForm(forms.ModelForm):
    class Meta:
        model = MetricRate
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned  # field errors first; the probe below needs every field
        probe = MetricRate(**{k: v for k, v in cleaned.items() if k not in ("id", "rate_card", "DELETE")})
        try:
            probe.to_price()
        except (PricingError, ValueError, ArithmeticError, TypeError, AttributeError) as exc:
            raise forms.ValidationError(f"Invalid price: {exc}") from exc
        return cleaned


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=4, help_text="Pre-tax amount to credit.")
    reason = forms.CharField(max_length=300)


class GenerateInvoicesForm(forms.Form):
    period = forms.RegexField(regex=r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM",
                              error_messages={"invalid": "Use YYYY-MM, e.g. 2026-11."})
    finalize = forms.BooleanField(required=False, initial=True, help_text="Number and freeze them, render PDFs; "
                                  "unticked: drafts to review first.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["period"].initial = format_period(previous_period(timezone.now().date().replace(day=1)))


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=300)


class MetricRateInline(admin.TabularInline):
    model = MetricRate
    form = MetricRateForm
    extra = 0
    formfield_overrides = compact_inline_widgets()

    def _locked(self, obj):
        return obj is not None and selectors.rate_card_is_locked(card=obj)

    def has_add_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._locked(obj) and super().has_delete_permission(request, obj)


def _bars(figures, scale) -> dict:
    """Revenue and cost of a margin report or row as percentages of `scale`, for the bar chart."""
    return {
        "revenue_pct": float(figures.revenue / scale * 100) if figures.revenue > 0 else 0,
        "cost_pct": float(figures.cost / scale * 100) if figures.cost > 0 else 0,
    }


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = ["__str__", "client", "effective_from", "currency", "platform_fee", "tax_rate_percent", "locked"]
    list_filter = ["currency"]
    inlines = [MetricRateInline]
    formfield_overrides = {models.DecimalField: {"widget": PlainDecimalInput}}
    actions = ["copy_as_new_version"]

    @admin.action(description="Copy as a new version (from the next open month)")
    def copy_as_new_version(self, request, queryset):
        for card in queryset:
            start = selectors.rate_card_next_version_start(card=card)
            try:
                copy = services.rate_card_create(
                    client=card.client, effective_from=start, currency=card.currency, platform_fee=card.platform_fee,
                    minimum_commitment=card.minimum_commitment, tax_rate_percent=card.tax_rate_percent,
                    call_billing_increment_seconds=card.call_billing_increment_seconds,
                    call_minimum_seconds=card.call_minimum_seconds, name=card.name, copy_rates_from=card)
            except ApplicationError as exc:
                self.message_user(request, f"{card}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, format_html('Created <a href="{}">{}</a>; edit its prices before {}.',
                                                       reverse("admin:billing_ratecard_change", args=[copy.pk]),
                                                       copy, f"{start:%Y-%m}"), messages.SUCCESS)

    @admin.display(boolean=True, description="locked")
    def locked(self, obj):
        return selectors.rate_card_is_locked(card=obj)

    def has_change_permission(self, request, obj=None):
        if obj is not None and selectors.rate_card_is_locked(card=obj):
            return False  # viewable, not editable: create a new version
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and selectors.rate_card_is_locked(card=obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        def clean(form_self):
            cleaned = forms.ModelForm.clean(form_self)
            if cleaned.get("effective_from"):
                try:
                    services.rate_card_assert_period_open(
                        client=cleaned.get("client"), effective_from=cleaned["effective_from"]
                    )
                except ApplicationError as exc:
                    raise forms.ValidationError(exc.message) from exc
            return cleaned

        form.clean = clean
        return form


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["position", "kind", "description", "quantity", "unit", "unit_price", "amount", "provider_cost"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "client", "kind", "period", "status", "total", "currency", "documents", "stripe"]
    list_filter = ["status", "kind", "period_start", "currency"]
    search_fields = ["number", "client__name", "client__slug"]
    inlines = [InvoiceLineInline]
    actions = ["finalise", "mark_paid", "push_to_stripe", "render_documents"]
    readonly_fields = [f.name for f in Invoice._meta.fields] + ["documents", "margin_link"]
    fields = [
        "client",
        "kind",
        "status",
        "number",
        "period_start",
        "currency",
        "subtotal",
        "tax_label",
        "tax_rate_percent",
        "tax",
        "total",
        "provider_cost",
        "margin_link",
        "documents",
        "credit_note_for",
        "reason",
        "finalised_at",
        "due_on",
        "sent_at",
        "paid_at",
        "payment_failed_at",
        "voided_at",
        "stripe_invoice_id",
        "stripe_hosted_url",
        "rate_card",
        "default_rate_card",
    ]

    def has_add_permission(self, request):
        return False  # invoices come from generate_invoices / the month-end run

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.is_draft

    @admin.display(description="period", ordering="period_start")
    def period(self, obj):
        return format_period(obj.period_start)

    @admin.display(description="documents")
    def documents(self, obj):
        if not obj.pk or obj.is_draft:
            return "—"
        links = []
        if obj.pdf:
            links.append(
                format_html('<a href="{}">PDF</a>', reverse("admin:billing_invoice_download", args=[obj.pk, "pdf"]))
            )
        if obj.usage_csv:
            links.append(
                format_html('<a href="{}">CSV</a>', reverse("admin:billing_invoice_download", args=[obj.pk, "csv"]))
            )
        return format_html(" · ".join(["{}"] * len(links)), *links) if links else "rendering…"

    @admin.display(description="stripe")
    def stripe(self, obj):
        if obj.stripe_hosted_url:
            return format_html('<a href="{}" target="_blank">hosted</a>', obj.stripe_hosted_url)
        return "—"

    @admin.display(description="margin / corrections")
    def margin_link(self, obj):
        url = reverse("admin:billing_margins") + f"?period={format_period(obj.period_start)}&client={obj.client_id}"
        links = format_html('<a href="{}">Margin report</a>', url)
        if obj.kind == Invoice.Kind.INVOICE and obj.status in (
            Invoice.Status.FINALISED,
            Invoice.Status.SENT,
            Invoice.Status.PAID,
        ):
            links = format_html(
                '{} · <a href="{}">Issue credit note</a>',
                links,
                reverse("admin:billing_invoice_credit_note", args=[obj.pk]),
            )
        if obj.status in (Invoice.Status.FINALISED, Invoice.Status.SENT):
            links = format_html(
                '{} · <a href="{}">Void</a>', links, reverse("admin:billing_invoice_void", args=[obj.pk])
            )
        return links

    def get_urls(self):
        return [
            path("margins/", self.admin_site.admin_view(self.margins_view), name="billing_margins"),
            path("generate/", self.admin_site.admin_view(self.generate_view), name="billing_invoice_generate"),
            re_path(r"^generate/(?P<period>\d{4}-\d{2})/$", self.admin_site.admin_view(self.generate_progress_view),
                    name="billing_invoice_generate_progress"),
            path(
                "<int:invoice_id>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            path("<int:invoice_id>/void/", self.admin_site.admin_view(self.void_view), name="billing_invoice_void"),
            re_path(
                r"^(?P<invoice_id>\d+)/download/(?P<which>pdf|csv)/$",
                self.admin_site.admin_view(self.download_view),
                name="billing_invoice_download",
            ),
        ] + super().get_urls()

    def _action_page(self, request, invoice_id, form_class, title, service, done):
        """A one-form page for an invoice action: `title(invoice)`, `service(invoice,
        **cleaned_data)` and `done(result)` say what differs between actions."""
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = service(invoice, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, done(invoice, result), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[result.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": title(invoice),
            "invoice": invoice,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "billing/admin_invoice_action.html", context)

    def credit_note_view(self, request, invoice_id):
        return self._action_page(
            request,
            invoice_id,
            CreditNoteForm,
            title=lambda invoice: f"Credit note for {invoice}",
            service=lambda invoice, **data: services.credit_note_create(invoice_id=invoice.pk, **data),
            done=lambda invoice, note: f"Credit note {note.number} issued for {invoice}.",
        )

    def void_view(self, request, invoice_id):
        return self._action_page(
            request,
            invoice_id,
            VoidForm,
            title=lambda invoice: f"Void {invoice}",
            service=lambda invoice, **data: services.invoice_void(invoice_id=invoice.pk, **data),
            done=lambda invoice, voided: f"{voided} is void; generate the month again to replace it.",
        )

    def download_view(self, request, invoice_id, which):
        from apps.billing.views import invoice_file_response

        return invoice_file_response(get_object_or_404(Invoice, pk=int(invoice_id)), which)

    def margins_view(self, request):
        try:
            period = parse_period(request.GET.get("period", ""))
        except ValueError:
            period = previous_period(timezone.now().date().replace(day=1))
        reports = selectors.margin_overview(period_start=period)
        client_id = request.GET.get("client")
        if client_id and client_id.isdigit():
            reports = [r for r in reports if r.client_id == int(client_id)]
        scale = max([max(r.revenue, r.cost) for r in reports] + [1])
        rows = [
            {
                **_bars(r, scale),
                "report": r,
                "metric_rows": [{**_bars(row, max(r.revenue, r.cost, 1)), "row": row} for row in r.rows],
            }
            for r in reports
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Margins {format_period(period)}",
            "period": format_period(period),
            "previous": format_period(previous_period(period)),
            "rows": rows,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "billing/admin_margins.html", context)

    def generate_view(self, request):
        """Generate (and finalise) every active client's invoice for a month: one task per client, then
        the progress page. The same tasks as the month-end run, so running it twice changes nothing."""
        from apps.billing.tasks import invoice_generate_task

        form = GenerateInvoicesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            period, finalize = form.cleaned_data["period"], form.cleaned_data["finalize"]
            client_ids = list(selectors.clients_to_invoice().values_list("pk", flat=True))
            for client_id in client_ids:
                invoice_generate_task.delay(client_id, period, finalize)
            self.message_user(request, f"Generating {period} for {len(client_ids)} client(s).", messages.SUCCESS)
            url = reverse("admin:billing_invoice_generate_progress", args=[period])
            return HttpResponseRedirect(url if finalize else f"{url}?drafts=1")
        context = {**self.admin_site.each_context(request), "title": "Generate invoices", "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "billing/admin_invoice_generate.html", context)

    def generate_progress_view(self, request, period):
        try:
            period_start = parse_period(period)
        except ValueError:
            raise Http404("Not a month: use YYYY-MM.") from None
        rows = selectors.invoice_generation_progress(period_start=period_start, finalize=not request.GET.get("drafts"))
        done = sum(row.done for row in rows)
        context = {
            **self.admin_site.each_context(request), "title": f"Invoices for {period}: {done} of {len(rows)} done",
            "rows": rows, "done": done, "total": len(rows), "period": period, "opts": self.model._meta,
        }
        return TemplateResponse(request, "billing/admin_invoice_generate_progress.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "margins_url": reverse("admin:billing_margins"),
                         "generate_url": reverse("admin:billing_invoice_generate")}
        return super().changelist_view(request, extra_context)

    def _each(self, request, queryset, service, done: str):
        ok = 0
        for invoice in queryset:
            try:
                service(invoice)
                ok += 1
            except ApplicationError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
        if ok:
            self.message_user(request, f"{ok} invoice(s) {done}.", messages.SUCCESS)

    @admin.action(description="Finalise (number, freeze, render PDF)")
    def finalise(self, request, queryset):
        self._each(request, queryset, lambda i: services.invoice_finalize(invoice_id=i.pk), "finalised")

    @admin.action(description="Mark paid")
    def mark_paid(self, request, queryset):
        self._each(request, queryset, lambda i: services.invoice_mark_paid(invoice_id=i.pk), "marked paid")

    @admin.action(description="Push to Stripe")
    def push_to_stripe(self, request, queryset):
        from apps.billing.tasks import invoice_push_to_stripe_task

        self._each(
            request, queryset, lambda i: invoice_push_to_stripe_task.delay(i.pk), "queued for Stripe (a task pushes them)"
        )

    @admin.action(description="Re-render PDF and usage CSV")
    def render_documents(self, request, queryset):
        from apps.billing.tasks import invoice_render_documents_task

        self._each(
            request,
            queryset.exclude(status=Invoice.Status.DRAFT),
            lambda i: invoice_render_documents_task.delay(i.pk, True),
            "queued for rendering (a task renders them)",
        )


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    """Read-only: the ledger is append-only."""

    list_display = [
        "occurred_at",
        "client",
        "call_id",
        "metric",
        "dimension",
        "quantity",
        "unit",
        "provider",
        "provider_cost",
    ]
    list_filter = ["metric", "provider"]
    search_fields = ["call_id", "idempotency_key"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ["client", "soft_cap_minutes", "hard_cap_minutes", "soft_cap_amount", "hard_cap_amount", "cap_state"]
    readonly_fields = ["stripe_customer_id"]

    @admin.display(description="this month")
    def cap_state(self, obj):
        status = selectors.usage_cap_status(client=obj.client, exact=True)
        return f"{status.state} ({status.minutes_used:.0f} min, {status.amount_used} {status.currency})"


@admin.register(CapAlert)
class CapAlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "client", "period_start", "level", "detail"]
    list_filter = ["level"]

    def has_add_permission(self, request):
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "event_id", "type", "invoice"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class BillingSettingsForm(forms.ModelForm):
    """Stripe secrets are never rendered back into the page (no value attribute,
    no placeholder derived from them); a blank field on save keeps the stored one.
    To remove a key, tick "clear"."""

    SECRET_FIELDS = ("stripe_secret_key", "stripe_webhook_secret")

    stripe_secret_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the stored key.",
    )
    stripe_webhook_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the stored secret.",
    )
    clear_stripe_secret_key = forms.BooleanField(required=False, label="Clear the stored Stripe secret key")
    clear_stripe_webhook_secret = forms.BooleanField(required=False, label="Clear the stored webhook secret")

    class Meta:
        model = BillingSettings
        fields = [
            "invoice_prefix",
            "credit_note_prefix",
            "payment_terms_days",
            "invoice_footer",
            "cap_alert_emails",
            "stripe_enabled",
            "stripe_secret_key",
            "stripe_webhook_secret",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Never hand the stored secret to the widget, whatever it renders.
        for name in self.SECRET_FIELDS:
            self.initial[name] = ""
            if self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text = "A value is stored. Leave blank to keep it."

    def clean(self):
        cleaned = super().clean()
        for name in self.SECRET_FIELDS:
            if cleaned.get(f"clear_{name}"):
                cleaned[name] = ""
            elif not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    fields = [
        "invoice_prefix",
        "credit_note_prefix",
        "payment_terms_days",
        "invoice_footer",
        "cap_alert_emails",
        "stripe_enabled",
        "stripe_secret_key",
        "clear_stripe_secret_key",
        "stripe_webhook_secret",
        "clear_stripe_webhook_secret",
    ]

    form = BillingSettingsForm

    def has_add_permission(self, request):
        return not BillingSettings.objects.exists()
