"""Portal form of an agent's QA settings: JSON lists and the schema as text."""
from __future__ import annotations

import json

from django import forms

from apps.quality.llm import QA_VENDORS


class JSONTextField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "cols": 70})

    def __init__(self, *, empty, **kwargs):
        self.empty = empty
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2) if value else ""
        return value

    def clean(self, value):
        value = super().clean(value)
        if not value.strip():
            return self.empty
        try:
            return json.loads(value)
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error.msg} (line {error.lineno}).") from None


class QAConfigForm(forms.Form):
    enabled = forms.BooleanField(required=False, initial=True, label="Review this agent's calls")
    sample_rate_percent = forms.IntegerField(min_value=0, max_value=100, initial=100, label="Sample rate (%)")
    min_duration_secs = forms.IntegerField(min_value=0, initial=10, label="Minimum duration (s)")
    skip_voicemail = forms.BooleanField(required=False, initial=True)
    dispositions = JSONTextField(empty=[], help_text='A JSON list, e.g. ["booked", "not interested", "call back"]; '
                                                     "empty: the default set.")
    custom_tags = JSONTextField(empty=[], help_text="A JSON list of your own tags, added to the default set.")
    extraction_schema = JSONTextField(empty={}, help_text="A JSON Schema of the data to extract (an object); "
                                                          "empty: no extraction.")
    llm_provider = forms.ChoiceField(required=False, choices=[("", "The agent's own LLM")] + [(v, v) for v in QA_VENDORS])
    llm_model = forms.CharField(required=False, max_length=100, help_text="Empty: the agent's model.")
