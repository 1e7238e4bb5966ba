"""Portal form for an agent: parses input only; the rules live in agent_save (agent_config_problems), whose
field-keyed errors the view places under the matching fields."""
from __future__ import annotations

from django import forms

from apps.agents.models import AGENT_PROVIDER_KINDS, TOOL_NAMES, Agent
from apps.agents.selectors import AGENT_LANGUAGES
from apps.providers.registry import vendor_choices

# Settings with a field of their own in the editor: (kind, setting) -> form field name.
PICKED_SETTINGS = {("stt", "model"): "stt_model", ("llm", "model"): "llm_model",
                   ("llm", "temperature"): "llm_temperature", ("tts", "model"): "tts_model",
                   ("tts", "voice"): "tts_voice"}
JSON_HELP = "Other settings of this provider as JSON, e.g. {\"language\": \"en\"}; usually empty."


class AgentForm(forms.Form):
    name = forms.CharField(max_length=200)
    greeting = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                               help_text="The first thing the agent says when it answers.")
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "class": "prompt"}),
                                    help_text="Who the agent is, what it knows and how it should speak.")
    language = forms.ChoiceField(choices=AGENT_LANGUAGES, initial="en")
    stt_provider = forms.ChoiceField(choices=(), label="Speech-to-text provider")
    stt_model = forms.CharField(required=False, max_length=100, label="Speech-to-text model")
    stt_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   label="Other speech-to-text settings", help_text=JSON_HELP)
    llm_provider = forms.ChoiceField(choices=(), label="Language model provider")
    llm_model = forms.CharField(required=False, max_length=100, label="Language model")
    llm_temperature = forms.FloatField(required=False, label="Temperature", help_text="0 (focused) to 2 (creative).",
                                       widget=forms.NumberInput(attrs={"step": "0.1"}))
    llm_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   label="Other language model settings", help_text=JSON_HELP)
    tts_provider = forms.ChoiceField(choices=(), label="Text-to-speech provider")
    tts_model = forms.CharField(required=False, max_length=100, label="Text-to-speech model")
    tts_voice = forms.CharField(required=False, max_length=100, label="Voice", help_text="The provider's voice id.")
    tts_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   label="Other text-to-speech settings", help_text=JSON_HELP)
    vad_stop_secs = forms.FloatField(initial=0.5, label="Silence before the caller's turn ends (s)",
                                     widget=forms.NumberInput(attrs={"step": "0.1"}))
    allow_interruptions = forms.BooleanField(required=False, initial=True, label="Callers may interrupt the agent")
    idle_timeout_secs = forms.FloatField(initial=30.0, label="Hang up after silence (s, 0 = never)")
    max_call_secs = forms.IntegerField(initial=600, label="Maximum call length (s)")
    end_call_phrases = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                       help_text="One phrase per line.")
    tools = forms.MultipleChoiceField(choices=[(name, name.replace("_", " ")) for name in TOOL_NAMES], required=False,
                                      widget=forms.CheckboxSelectMultiple)
    transfer_number = forms.CharField(max_length=32, required=False, help_text="E.164, e.g. +14155550100.")
    fallback_line = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="Said when the agent cannot run (no provider key free, an outage).")

    def __init__(self, *args, keep_language: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in AGENT_PROVIDER_KINDS:
            self.fields[f"{kind}_provider"].choices = vendor_choices(kind)
            self.fields[f"{kind}_model"].widget.attrs["list"] = f"{kind}-models"
        # An agent saved with a language outside the list (through the API) may keep it.
        if keep_language and keep_language not in dict(AGENT_LANGUAGES):
            self.fields["language"].choices = [*AGENT_LANGUAGES, (keep_language, keep_language)]

    @classmethod
    def initial_for(cls, agent: Agent) -> dict:
        initial = {"name": agent.name, **agent.config_dict()}
        initial["end_call_phrases"] = "\n".join(agent.end_call_phrases or [])
        for kind in AGENT_PROVIDER_KINDS:
            settings = dict(initial.get(f"{kind}_settings") or {})
            for (picked_kind, setting), field in PICKED_SETTINGS.items():
                if picked_kind == kind and setting in settings:
                    initial[field] = settings.pop(setting)
            initial[f"{kind}_settings"] = settings
        return initial

    def config(self) -> dict:
        """The cleaned input as agent_save keyword arguments (without name)."""
        data = dict(self.cleaned_data)
        data.pop("name")
        for kind in AGENT_PROVIDER_KINDS:
            settings = data[f"{kind}_settings"]
            data[f"{kind}_settings"] = {} if settings in (None, "") else settings
        for (kind, setting), field in PICKED_SETTINGS.items():
            value = data.pop(field)
            if isinstance(value, str):
                value = value.strip()
            if value not in (None, "") and isinstance(data[f"{kind}_settings"], dict):
                data[f"{kind}_settings"] = {**data[f"{kind}_settings"], setting: value}
        data["end_call_phrases"] = [line.strip() for line in data["end_call_phrases"].splitlines() if line.strip()]
        data["tools"] = list(data["tools"])
        return data

    def add_config_errors(self, problems: dict, message: str) -> None:
        """agent_config_problems' {field: message} under the matching fields; a provider setting's problem under
        its own picker when it has one (model, voice, temperature), else under the kind's other settings."""
        placed = False
        for field, text in problems.items():
            if not isinstance(text, str):
                continue
            target = field
            if field.endswith("_settings"):
                kind = field.removesuffix("_settings")
                for (picked_kind, setting), picker in PICKED_SETTINGS.items():
                    if picked_kind == kind and (f"'{setting}'" in text or f"setting {setting}" in text):
                        target = picker
                        break
            if target in self.fields:
                self.add_error(target, text)
                placed = True
        if not placed:
            self.add_error(None, message)
