"""The calls list's filters: parse the query string only (bad input is a form error, never a 500)."""
from __future__ import annotations

from django import forms

from apps.calls.models import Call


class CallFilterForm(forms.Form):
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    agent = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Agent")
    direction = forms.ChoiceField(required=False, choices=[("", "Any direction"), *Call.Direction.choices])
    end_reason = forms.ChoiceField(required=False, label="Outcome", choices=[("", "Any outcome"), *Call.EndReason.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Call.Status.choices])
    number = forms.CharField(required=False, max_length=32, widget=forms.TextInput(attrs={"type": "search", "placeholder": "Phone number"}))
    q = forms.CharField(required=False, max_length=200, label="Said",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Words in the transcript"}))

    def __init__(self, *args, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "Any agent"), *[(agent.pk, agent.name) for agent in agents]]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data

    def selector_kwargs(self, *, tz: str) -> dict:
        """Keyword arguments for calls.selectors.call_list (only valid when is_valid())."""
        from apps.calls.selectors import local_day_bounds

        data = self.cleaned_data
        since, until = local_day_bounds(since=data.get("since"), until=data.get("until"), tz=tz)
        return {"direction": data.get("direction") or "", "status": data.get("status") or "",
                "end_reason": data.get("end_reason") or "", "agent_id": data.get("agent"),
                "number": (data.get("number") or "").strip(), "text": (data.get("q") or "").strip(),
                "since": since, "until": until}
