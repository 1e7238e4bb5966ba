"""Portal upload form: parses input only; the rules live in clip_create."""
from __future__ import annotations

from django import forms

from apps.clips.models import CLIP_TAGS


class ClipForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="What the LLM writes to play it: [[clip:name]]. "
                                                    "Lowercase letters, digits, - and _.")
    words = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                            help_text="The exact words of the recording.")
    tags = forms.MultipleChoiceField(choices=[(tag, tag) for tag in CLIP_TAGS], required=False,
                                     widget=forms.CheckboxSelectMultiple,
                                     help_text="A clip tagged hold plays while a tool call or the pre-call fetch runs.")
    interruptible = forms.BooleanField(required=False, initial=True, label="Callers may talk over it")
    agent = forms.TypedChoiceField(choices=(), required=False, coerce=int, empty_value=None,
                                   label="Agent", help_text="Blank: every agent of this client may play it.")
    audio = forms.FileField(help_text="WAV or MP3, up to 30 s; stored as 8 kHz mono for the phone.")

    def __init__(self, *args, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "All agents")] + [(agent.pk, agent.name) for agent in agents]
