"""Portal form for a client's own provider key. The key is never rendered back."""
from __future__ import annotations

from django import forms

from apps.providers.registry import vendors


class ProviderAccountForm(forms.Form):
    provider = forms.ChoiceField(choices=())
    label = forms.CharField(max_length=100, required=False)
    api_key = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False, label="API key")
    base_url = forms.CharField(max_length=300, required=False, label="Base URL / endpoint",
                               help_text="Only for OpenAI-compatible servers and Azure.")
    region = forms.CharField(max_length=60, required=False)
    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                             help_text="Only for vendors with a second secret (AWS Bedrock).")
    max_concurrency = forms.IntegerField(min_value=0, initial=0, help_text="Concurrent calls on this key; 0 = no cap.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(vendor.name, vendor.label) for vendor in vendors().values()]
