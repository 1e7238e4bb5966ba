"""Portal form for an agent: parses input only; the rules live in agent_save (agent_config_problems), whose
field-keyed errors the view places under the matching fields."""
from __future__ import annotations

from django import forms

from apps.agents.models import AGENT_PROVIDER_KINDS, PIPELINE_MODES, S2S_KIND, TOOL_NAMES, Agent
from apps.agents.selectors import AGENT_LANGUAGES
from apps.providers.registry import vendor_choices

# Settings with a field of their own in the editor: (kind, setting) -> form field name.
PICKED_SETTINGS = {("stt", "model"): "stt_model", ("llm", "model"): "llm_model",
                   ("llm", "temperature"): "llm_temperature", ("tts", "model"): "tts_model",
                   ("tts", "voice"): "tts_voice", ("s2s", "model"): "s2s_model", ("s2s", "voice"): "s2s_voice"}
# The editor's provider stages: the cascade's three and the speech-to-speech model.
FORM_STAGES = (*AGENT_PROVIDER_KINDS, "s2s")
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
    pipeline_mode = forms.ChoiceField(
        choices=PIPELINE_MODES, initial="cascade", label="Pipeline", required=False,
        help_text="One speech-to-speech model hears the caller and answers in its own voice (the speech-to-text, "
                  "language model and voice settings above are then unused); fixed lines such as the goodbye are "
                  "spoken in the local voice.")
    s2s_provider = forms.ChoiceField(choices=(), required=False, label="Speech-to-speech provider")
    s2s_model = forms.CharField(required=False, max_length=100, label="Speech-to-speech model",
                                help_text="e.g. gpt-realtime, gemini-2.5-flash-native-audio-preview-09-2025")
    s2s_voice = forms.CharField(required=False, max_length=100, label="Speech-to-speech voice",
                                help_text="The provider's voice name, e.g. marin or Charon.")
    s2s_settings = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                                   label="Other speech-to-speech settings", help_text=JSON_HELP)
    vad_stop_secs = forms.FloatField(initial=0.5, label="Silence before the caller's turn ends (s)",
                                     widget=forms.NumberInput(attrs={"step": "0.1"}))
    allow_interruptions = forms.BooleanField(required=False, initial=True, label="Callers may interrupt the agent")
    interrupt_after_words = forms.IntegerField(
        required=False, initial=1, label="Interrupt only after this many words",
        help_text="Words that are not acknowledgements: 1 (the default) stops the agent at the caller's first "
                  "such word (\"No\", \"Wait\"); 0: any speech stops it at once.")
    acknowledgements = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Acknowledgement words",
        help_text='Said while the agent talks, these never interrupt and are not answered ("mm-hmm", "okay"). '
                  "One per line; blank: the usual ones of the agent's language.")
    end_of_turn_model = forms.BooleanField(
        required=False, initial=True, label="Wait for the caller to finish the sentence",
        help_text="An end-of-turn model and the transcript tell a pause mid-sentence from the end of the turn.")
    idle_timeout_secs = forms.FloatField(initial=30.0, label="Hang up after silence (s, 0 = never)")
    max_call_secs = forms.IntegerField(initial=600, label="Maximum call length (s)")
    end_call_phrases = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                       help_text="One phrase per line.")
    stt_dictionary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="STT dictionary",
        help_text="Domain words and phrases the caller may say (KYC, ESOPs, monocrystalline), one per line: boosted "
                  "at speech-to-text providers that take keywords, else corrected in each transcript.")
    tools = forms.MultipleChoiceField(choices=[(name, name.replace("_", " ")) for name in TOOL_NAMES], required=False,
                                      widget=forms.CheckboxSelectMultiple)
    transfer_number = forms.CharField(max_length=32, required=False, help_text="E.164, e.g. +14155550100.")
    fallback_line = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="Said when the agent cannot run (no provider key free, an outage).")
    voicemail_detection = forms.BooleanField(
        required=False, initial=False, label="Detect voicemail on outbound calls",
        help_text="The carrier's answering-machine detection plus the callee's first words: on a machine the agent "
                  "waits for the beep, leaves the voicemail message and hangs up (outcome: voicemail).")
    voicemail_message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=1000, label="Voicemail message",
        help_text="Said after the beep (blank: hang up without a message). May use {{variables}}.")

    def __init__(self, *args, keep_language: str | None = None, **kwargs):
        from apps.agents.selectors import http_tool_shapes, mcp_server_names

        super().__init__(*args, **kwargs)
        for kind in AGENT_PROVIDER_KINDS:
            self.fields[f"{kind}_provider"].choices = vendor_choices(kind)
            self.fields[f"{kind}_model"].widget.attrs["list"] = f"{kind}-models"
        self.fields["s2s_provider"].choices = [("", "(none)"), *vendor_choices(S2S_KIND)]
        # The client's HTTP tools and MCP servers too: a single-prompt agent's tools are its start node's.
        names = [*TOOL_NAMES, *http_tool_shapes(), *(f"mcp:{name}" for name in sorted(mcp_server_names()))]
        self.fields["tools"].choices = [(name, name.replace("_", " ") if name in TOOL_NAMES else name)
                                        for name in names]
        # An agent saved with a language outside the list (through the API) may keep it.
        if keep_language and keep_language not in dict(AGENT_LANGUAGES):
            self.fields["language"].choices = [*AGENT_LANGUAGES, (keep_language, keep_language)]

    @classmethod
    def initial_for(cls, agent: Agent) -> dict:
        initial = {"name": agent.name, **agent.config_dict()}
        initial["end_call_phrases"] = "\n".join(agent.end_call_phrases or [])
        initial["acknowledgements"] = "\n".join(agent.acknowledgements or [])
        initial["stt_dictionary"] = "\n".join(agent.stt_dictionary or [])
        for kind in FORM_STAGES:
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
        for kind in FORM_STAGES:
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
        data["acknowledgements"] = [line.strip() for line in data["acknowledgements"].splitlines() if line.strip()]
        data["stt_dictionary"] = [line.strip() for line in data["stt_dictionary"].splitlines() if line.strip()]
        if data["interrupt_after_words"] is None:
            data["interrupt_after_words"] = 1
        data["pipeline_mode"] = data.get("pipeline_mode") or "cascade"  # a form from before the choice existed
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


class SecretTextarea(forms.Textarea):
    """Never renders a value, not even the one just submitted (a form shown again with an error)."""

    def format_value(self, value):
        return None


class HttpToolForm(forms.Form):
    """An HTTP tool; secret headers are never shown again (blank keeps a stored value)."""

    name = forms.CharField(max_length=64, help_text="What the LLM calls, e.g. check_slots.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                                  help_text="When to use it: the LLM reads this.")
    parameters = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 4}), initial=dict,
                                 help_text='JSON Schema, e.g. {"type": "object", "properties": {"day": {"type": "string"}}}')
    method = forms.ChoiceField(choices=[(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")])
    url = forms.CharField(max_length=2000, label="URL",
                          help_text="May use {{parameter}} and call variables, e.g. https://api.example.com/slots/{{day}}")
    headers = forms.JSONField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial=dict,
                              help_text='Plain headers as JSON, e.g. {"Accept": "application/json"}')
    secret_header_names = forms.CharField(required=False, label="Secret header names",
                                          help_text="Comma-separated, e.g. Authorization")
    secret_header_values = forms.CharField(
        required=False, label="Secret header values", widget=SecretTextarea(attrs={"rows": 2}),
        help_text="One per line, in the order of the names; encrypted, never shown again. Blank keeps the stored value.")
    timeout_secs = forms.FloatField(initial=5.0, label="Timeout (s)")
    response_fields = forms.CharField(required=False, help_text="Comma-separated dotted paths the LLM gets, "
                                                                 "e.g. slots, order.status. Blank: the whole answer, trimmed.")

    @classmethod
    def initial_for(cls, tool) -> dict:
        return {"name": tool.name, "description": tool.description, "parameters": tool.parameters,
                "method": tool.method, "url": tool.url, "headers": tool.headers,
                "secret_header_names": ", ".join(tool.secret_header_dict()), "timeout_secs": tool.timeout_secs,
                "response_fields": ", ".join(tool.response_fields or [])}

    def tool_fields(self) -> dict:
        data = self.cleaned_data
        names = [name.strip() for name in data["secret_header_names"].split(",") if name.strip()]
        values = data["secret_header_values"].split("\n") if data["secret_header_values"] else []
        secrets = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(names)}
        return {"name": data["name"], "description": data["description"], "parameters": data["parameters"] or {},
                "method": data["method"], "url": data["url"], "headers": data["headers"] or {},
                "secret_headers": secrets, "timeout_secs": data["timeout_secs"],
                "response_fields": [path.strip() for path in data["response_fields"].split(",") if path.strip()]}


class McpServerForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Nodes list it as mcp:<name>.")
    url = forms.CharField(max_length=2000, label="URL", help_text="Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp")
    secret_header_names = forms.CharField(required=False, label="Secret header names",
                                          help_text="Comma-separated, e.g. Authorization")
    secret_header_values = forms.CharField(
        required=False, label="Secret header values", widget=SecretTextarea(attrs={"rows": 2}),
        help_text="One per line, in the order of the names; encrypted, never shown again. Blank keeps the stored value.")
    timeout_secs = forms.FloatField(initial=5.0, label="Timeout (s)")

    @classmethod
    def initial_for(cls, server) -> dict:
        return {"name": server.name, "url": server.url, "timeout_secs": server.timeout_secs,
                "secret_header_names": ", ".join(server.secret_header_dict())}

    def server_fields(self) -> dict:
        data = self.cleaned_data
        names = [name.strip() for name in data["secret_header_names"].split(",") if name.strip()]
        values = data["secret_header_values"].split("\n") if data["secret_header_values"] else []
        return {"name": data["name"], "url": data["url"], "timeout_secs": data["timeout_secs"],
                "secret_headers": {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(names)}}
