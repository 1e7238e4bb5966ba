"""Small display filters for the portal and the agency console: durations as m:ss, money as money."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def minutes_seconds(seconds) -> str:
    """125.4 -> '2:05'; 3725 -> '1:02:05'; None -> '—'."""
    if seconds is None or seconds == "":
        return "—"
    try:
        total = int(Decimal(str(seconds)).to_integral_value())
    except (InvalidOperation, ValueError):
        return "—"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def money(amount, currency: str = "") -> str:
    """An amount in its currency's minor unit with thousands separators: '1,234.50 USD'."""
    if amount is None or amount == "":
        return "—"
    from apps.billing.money import format_money

    try:
        return format_money(Decimal(str(amount)), currency or "USD") if currency else f"{Decimal(str(amount)):,.2f}"
    except (InvalidOperation, ValueError):
        return "—"


@register.filter
def ms(value) -> str:
    return "—" if value is None else f"{round(value):,} ms"


@register.filter
def percent_of(part, whole) -> float:
    """part / whole as a percentage for CSS widths (0 when whole is 0)."""
    try:
        return round(float(part or 0) * 100 / float(whole), 2) if whole else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def ms_clock(value) -> str:
    """Milliseconds as a position in a recording: 65300 -> '1:05.3'."""
    if value is None:
        return "—"
    minutes, rest = divmod(int(value), 60_000)
    return f"{minutes}:{rest // 1000:02d}.{(rest % 1000) // 100}"
