"""/api/v1/usage: this client's month so far — the estimated invoice and the usage caps."""
# No `from __future__ import annotations` here: django-ninja resolves these annotations itself.
from datetime import date
from decimal import Decimal

from ninja import Router, Schema

from apps.billing.selectors import month_to_date

router = Router(tags=["usage"])


class UsageOut(Schema):
    period: date
    currency: str
    estimated_total: Decimal | None  # the invoice so far, with fees and tax; null without a rate card
    usage_amount: Decimal  # usage charges after allowances, before fees and tax (what money caps measure)
    billable_minutes: Decimal
    cap_minutes: Decimal | None
    cap_amount: Decimal | None
    cap_percent: int | None
    cap_state: str  # allowed | soft | hard


@router.get("", response=UsageOut)
def usage_to_date(request):
    month = month_to_date(client=request.tenant)
    return UsageOut(period=month.period_start, currency=month.currency, estimated_total=month.estimated_total,
                    usage_amount=month.usage_amount, billable_minutes=month.billable_minutes,
                    cap_minutes=month.cap_minutes, cap_amount=month.cap_amount, cap_percent=month.cap_percent,
                    cap_state=month.cap_state)
