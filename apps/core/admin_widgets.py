"""Admin form widgets shared by the apps' admins."""
from __future__ import annotations

from decimal import Decimal

from django import forms


class PlainDecimalInput(forms.NumberInput):
    """A decimal as people write it: 0 not 0E-8, 0.1 not 0.10000000 (the column keeps its precision)."""

    def __init__(self, attrs=None):
        super().__init__({"step": "any", **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, Decimal):
            text = format(value.normalize(), "f")
            return "0" if text in ("-0", "") else text
        return super().format_value(value)
