"""Portal forms of test personas, suites and scenarios (the services check everything again)."""
from __future__ import annotations

from django import forms

from apps.quality.forms import JSONTextField
from apps.quality.llm import QA_VENDORS


class PersonaForm(forms.Form):
    name = forms.CharField(max_length=120)
    goal = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}), help_text="What the caller wants.")
    mood = forms.CharField(required=False, max_length=120, help_text="e.g. calm, in a hurry, annoyed.")
    facts = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
                            help_text="What the caller knows (name, dates, account number...), one per line.")
    speaking_style = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
                                     help_text="How they talk: short answers, rambling, mixing languages...")
    opening_line = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
                                   help_text="Their first words after the greeting; blank: the LLM decides.")
    llm_provider = forms.ChoiceField(required=False, choices=[("", "The agent's own LLM")] + [(v, v) for v in QA_VENDORS])
    llm_model = forms.CharField(required=False, max_length=100, help_text="Empty: the agent's model.")


class SuiteForm(forms.Form):
    agent = forms.TypedChoiceField(coerce=int, choices=())
    name = forms.CharField(max_length=120)
    schedule_every_hours = forms.IntegerField(min_value=0, max_value=720, initial=0, label="Run every (hours)",
                                              help_text="Against the published version; 0: only when you ask.")

    def __init__(self, *args, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [(agent.pk, agent.name) for agent in agents]


class ScenarioForm(forms.Form):
    name = forms.CharField(max_length=120)
    persona = forms.TypedChoiceField(coerce=int, choices=())
    criteria = JSONTextField(empty=[], help_text='A JSON list, e.g. [{"type": "tool_called", "name": "book", '
                                                 '"arguments": {"day": "tuesday"}}, {"type": "ended_politely"}, '
                                                 '{"type": "max_turns", "value": 6}]. Types: see the README.')
    max_turns = forms.IntegerField(min_value=1, max_value=50, initial=10, help_text="The caller gives up after this many lines.")

    def __init__(self, *args, personas=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["persona"].choices = [(persona.pk, persona.name) for persona in personas]
        self.fields["criteria"].widget.attrs["rows"] = 8
