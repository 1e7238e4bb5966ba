"""Portal form for an agent: parses input only; the rules live in agent_save."""
from __future__ import annotations

from django import forms

from apps.agents.models import AGENT_PROVIDER_KINDS, TOOL_NAMES, Agent
from apps.providers.registry import vendor_choices


class AgentForm(forms.Form):
    name = forms.CharField(max_length=200)
    greeting = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}))
    language = forms.CharField(max_length=16, initial="en")
    stt_provider = forms.ChoiceField(choices=(), label="Speech-to-text provider")
    stt_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   help_text='JSON, e.g. {"model": "nova-2"}')
    llm_provider = forms.ChoiceField(choices=(), label="Language model provider")
    llm_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   help_text='JSON, e.g. {"model": "gpt-4o-mini", "temperature": 0.3}')
    tts_provider = forms.ChoiceField(choices=(), label="Text-to-speech provider")
    tts_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   help_text='JSON, e.g. {"voice": "..."}')
    vad_stop_secs = forms.FloatField(initial=0.5, label="Silence before the caller's turn ends (s)")
    allow_interruptions = forms.BooleanField(required=False, initial=True, label="The caller can interrupt the agent")
    interrupt_after_words = forms.IntegerField(
        required=False, initial=2, label="Interrupt only after this many words",
        help_text="0: any speech stops the agent at once. Acknowledgements never count.")
    acknowledgements = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Acknowledgement words",
        help_text='Said while the agent talks, these never interrupt and are not answered ("mm-hmm", "okay"). '
                  "One per line; blank: the usual ones of the agent's language.")
    end_of_turn_model = forms.BooleanField(
        required=False, initial=True, label="Wait for the caller to finish the sentence",
        help_text="An end-of-turn model and the transcript tell a pause mid-sentence from the end of the turn.")
    idle_timeout_secs = forms.FloatField(initial=30.0)
    max_call_secs = forms.IntegerField(initial=600)
    end_call_phrases = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                       help_text="One phrase per line.")
    tools = forms.MultipleChoiceField(choices=[(name, name) for name in TOOL_NAMES], required=False,
                                      widget=forms.CheckboxSelectMultiple)
    transfer_number = forms.CharField(max_length=32, required=False)
    fallback_line = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in AGENT_PROVIDER_KINDS:
            self.fields[f"{kind}_provider"].choices = vendor_choices(kind)

    @classmethod
    def initial_for(cls, agent: Agent) -> dict:
        initial = {"name": agent.name, **agent.config_dict()}
        initial["end_call_phrases"] = "\n".join(agent.end_call_phrases or [])
        initial["acknowledgements"] = "\n".join(agent.acknowledgements or [])
        return initial

    def config(self) -> dict:
        """The cleaned input as agent_save keyword arguments (without name)."""
        data = dict(self.cleaned_data)
        data.pop("name")
        for kind in AGENT_PROVIDER_KINDS:
            data[f"{kind}_settings"] = {} if data[f"{kind}_settings"] in (None, "") else data[f"{kind}_settings"]
        data["end_call_phrases"] = [line.strip() for line in data["end_call_phrases"].splitlines() if line.strip()]
        data["tools"] = list(data["tools"])
        data["acknowledgements"] = [line.strip() for line in data["acknowledgements"].splitlines() if line.strip()]
        if data["interrupt_after_words"] is None:
            data["interrupt_after_words"] = 2
        return data
