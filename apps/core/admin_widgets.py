"""Admin form widgets shared by the apps' admins."""
from __future__ import annotations

from decimal import Decimal

from django import forms


class PlainDecimalInput(forms.NumberInput):
    """A decimal as people write it: 0 not 0E-8, 0.1 not 0.10000000 (the column keeps its precision)."""

    def __init__(self, attrs=None):
        super().__init__({"step": "any", "style": "width: 5.5em", **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, Decimal):
            text = format(value.normalize(), "f")
            return "0" if text in ("-0", "") else text
        return super().format_value(value)


# For tabular inlines with many columns (a rate card's prices): inputs sized to their content so the page fits.
COMPACT_INLINE_WIDGETS = {
    "DecimalField": {"widget": PlainDecimalInput},
    "CharField": {"widget": forms.TextInput(attrs={"style": "width: 7em"})},
    "JSONField": {"widget": forms.Textarea(attrs={"rows": 1, "style": "width: 8em; min-height: 2em"})},
}


def compact_inline_widgets() -> dict:
    """formfield_overrides for a tabular inline (model field class -> widget)."""
    from django.db import models

    return {getattr(models, name): options for name, options in COMPACT_INLINE_WIDGETS.items()}
