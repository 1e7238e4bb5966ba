"""Agents of one client (tenant schema). An Agent is the editable head; every
save through `agent_save` makes an immutable AgentVersion snapshot, and every
call records the version it ran."""
from __future__ import annotations

from django.db import models

from apps.core.crypto import EncryptedTextField

TOOL_END_CALL = "end_call"
TOOL_TRANSFER = "transfer_to_human"
TOOL_KNOWLEDGE = "search_knowledge_base"  # the client's knowledge base (apps/knowledge)
TOOL_NAMES = (TOOL_END_CALL, TOOL_TRANSFER, TOOL_KNOWLEDGE)
# The provider kinds (apps.providers.registry.KINDS) an agent's pipeline uses: one
# `<kind>_provider` and `<kind>_settings` field pair each.
AGENT_PROVIDER_KINDS = ("stt", "llm", "tts")
# How a call's audio becomes the agent's answer: STT -> LLM -> TTS, or one speech-to-speech model.
PIPELINE_CASCADE = "cascade"
PIPELINE_SPEECH_TO_SPEECH = "speech_to_speech"
PIPELINE_MODES = ((PIPELINE_CASCADE, "Speech to text, language model, text to speech"),
                  (PIPELINE_SPEECH_TO_SPEECH, "One speech-to-speech model"))
S2S_KIND = "speech_to_speech"  # the apps.providers.registry kind of `s2s_provider`


class AgentConfig(models.Model):
    """Everything a call needs from an agent: shared by the head and its snapshots."""

    greeting = models.TextField(blank=True)
    system_prompt = models.TextField(default="You are a helpful phone agent.")
    language = models.CharField(max_length=16, default="en")
    stt_provider = models.CharField(max_length=40, default="deepgram")
    stt_settings = models.JSONField(default=dict, blank=True)  # e.g. {"model": "nova-2"}
    llm_provider = models.CharField(max_length=40, default="openai")
    llm_settings = models.JSONField(default=dict, blank=True)  # e.g. {"model": "gpt-4o-mini", "temperature": 0.3}
    tts_provider = models.CharField(max_length=40, default="cartesia")
    tts_settings = models.JSONField(default=dict, blank=True)  # e.g. {"voice": "..."}
    # "speech_to_speech": the s2s provider hears the caller and speaks (stt/llm/tts are then unused).
    pipeline_mode = models.CharField(max_length=20, choices=PIPELINE_MODES, default=PIPELINE_CASCADE)
    s2s_provider = models.CharField(max_length=40, blank=True, default="")  # "openai_realtime", "gemini_live"
    s2s_settings = models.JSONField(default=dict, blank=True)  # e.g. {"model": "gpt-realtime", "voice": "marin"}
    vad_stop_secs = models.FloatField(default=0.5)
    allow_interruptions = models.BooleanField(default=True)
    # While the agent speaks, the caller interrupts after this many words that are not acknowledgements
    # (1: the first such word; 0: any speech at once).
    interrupt_after_words = models.PositiveSmallIntegerField(default=1)
    # Never interrupt, never answered ("mm-hmm", "okay"); empty: the language's own list.
    acknowledgements = models.JSONField(default=list, blank=True)
    # Smart Turn (and the transcript) decide whether a pause ends the caller's sentence. Opt-in: on the
    # shared fixtures it held some finished sentences to the 1.5 s maximum pause (benchmarks/RESULTS.md).
    end_of_turn_model = models.BooleanField(default=False)
    idle_timeout_secs = models.FloatField(default=30.0)
    max_call_secs = models.PositiveIntegerField(default=600)
    end_call_phrases = models.JSONField(default=list, blank=True)  # ["goodbye", "bye bye"]
    tools = models.JSONField(default=list, blank=True)  # subset of TOOL_NAMES
    transfer_number = models.CharField(max_length=32, blank=True)
    fallback_line = models.TextField(default="Sorry, I'm having trouble right now. Please call back later.")
    # The conversation as a graph (apps/agents/graph.schema.json). The global node's prompt is
    # `system_prompt`, the start node's greeting is `greeting` (agent_save keeps them in step).
    graph = models.JSONField(default=dict, blank=True)
    # Domain words and phrases ("KYC", "ESOPs", "monocrystalline"): boosted at STT vendors that take
    # keywords (Deepgram keyterms, Speechmatics additional vocab, OpenAI's prompt), else a
    # post-correction of each transcript (apps/voice/processors/stt_dictionary.py).
    stt_dictionary = models.JSONField(default=list, blank=True)

    # Outbound calls: ask the carrier for answering-machine detection and listen to the callee's first
    # words (apps.voice.voicemail); on a machine, say `voicemail_message` after the beep and hang up.
    voicemail_detection = models.BooleanField(default=False)
    voicemail_message = models.TextField(blank=True)

    CONFIG_FIELDS = (
        "greeting", "system_prompt", "language", "stt_provider", "stt_settings", "llm_provider", "llm_settings",
        "tts_provider", "tts_settings", "pipeline_mode", "s2s_provider", "s2s_settings", "vad_stop_secs",
        "allow_interruptions", "interrupt_after_words", "acknowledgements", "end_of_turn_model", "idle_timeout_secs",
        "max_call_secs", "end_call_phrases", "tools", "transfer_number", "fallback_line", "graph", "stt_dictionary",
        "voicemail_detection", "voicemail_message",
    )

    class Meta:
        abstract = True

    def config_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.CONFIG_FIELDS}


class Agent(AgentConfig):
    name = models.CharField(max_length=200)
    current_version = models.ForeignKey(
        "agents.AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    # The builder's unpublished work (None: no draft); publishing saves it as a new version.
    draft_graph = models.JSONField(null=True, blank=True)
    # Publishing a draft needs every test suite of the agent green on that very draft (apps.quality).
    require_green_suite = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentVersion(AgentConfig):
    """Immutable: written once by `agent_save`, never updated."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [models.UniqueConstraint(fields=["agent", "number"], name="agent_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("AgentVersion is immutable: save the Agent to make a new version")
        super().save(*args, **kwargs)


class HttpTool(models.Model):
    """A tool of this client's agents: the LLM calls it with `parameters` (JSON Schema),
    the runtime sends the HTTP request and hands back `response_fields` of the answer.
    `secret_headers` (JSON text {"Authorization": "Bearer ..."}) is encrypted at rest and
    never shown again; `headers` are plain. Not versioned with the agent: a change serves
    every agent version that names the tool from the next call on."""

    METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    name = models.CharField(max_length=64, unique=True)
    description = models.TextField()
    parameters = models.JSONField(default=dict, blank=True)  # {"type": "object", "properties": {...}, "required": [...]}
    method = models.CharField(max_length=8, default="GET")
    url = models.CharField(max_length=2000)  # may use {{parameter}} and call variables
    headers = models.JSONField(default=dict, blank=True)
    secret_headers = EncryptedTextField(blank=True, default="")
    timeout_secs = models.FloatField(default=5.0)
    response_fields = models.JSONField(default=list, blank=True)  # dotted paths; empty: the whole answer, trimmed
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def secret_header_dict(self) -> dict:
        import json

        return json.loads(self.secret_headers) if self.secret_headers else {}


class McpServer(models.Model):
    """A client's MCP server (streamable HTTP): a node that lists `mcp:<name>` among its tools
    offers the LLM every tool the server lists when the call starts. `secret_headers` as on
    HttpTool (encrypted, never shown again)."""

    name = models.CharField(max_length=64, unique=True)
    url = models.CharField(max_length=2000)
    secret_headers = EncryptedTextField(blank=True, default="")
    timeout_secs = models.FloatField(default=5.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def secret_header_dict(self) -> dict:
        import json

        return json.loads(self.secret_headers) if self.secret_headers else {}
