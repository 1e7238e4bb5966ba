"""What the voice runtime needs to know about one call, as plain data.

Built from the agent's published version (see `apps.voice.launch`), so the
runtime itself never reads models."""
from __future__ import annotations

from dataclasses import dataclass, field

TOOL_END_CALL = "end_call"
TOOL_TRANSFER = "transfer_to_human"
# How a speech-to-speech model is told the agent's greeting (it speaks first, in its own voice).
S2S_GREETING_INSTRUCTION = 'When the call starts, open it by saying exactly: "{greeting}"'
TOOL_KNOWLEDGE = "search_knowledge_base"


@dataclass(frozen=True)
class VoiceConfig:
    greeting: str = ""
    system_prompt: str = "You are a helpful phone agent."
    language: str = "en"
    vad_stop_secs: float = 0.5
    allow_interruptions: bool = True
    # While the agent speaks, the caller takes the turn after this many words that are not
    # acknowledgements (1: the first such word; 0: any speech the VAD hears, at once).
    interrupt_after_words: int = 1
    # Said while the agent talks, never interrupt and are not answered ("mm-hmm", "okay");
    # empty: the language's list (apps.voice.turns.ACKNOWLEDGEMENTS).
    acknowledgements: tuple[str, ...] = ()
    # Pipecat's Smart Turn model (and the transcript) decide whether a pause of
    # `vad_stop_secs` ends the turn; off (the default): every such pause does.
    end_of_turn_model: bool = False
    # The longest pause a turn survives when it sounds unfinished.
    max_pause_secs: float = 1.5
    idle_timeout_secs: float = 30.0
    max_call_secs: float = 600.0
    end_call_phrases: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    transfer_number: str = ""
    fallback_line: str = "Sorry, I'm having trouble right now. Please call back later."
    goodbye_line: str = "Goodbye!"
    transfer_line: str = "Connecting you to a person now."
    provider_timeout_secs: float = 8.0
    # How often the call tells the record it is still live (the sweeper ends calls that stop).
    heartbeat_secs: float = 20.0
    sample_rate: int = 8000
    # The workflow graph (apps/agents/graph.schema.json); empty: `system_prompt`, `greeting` and
    # `tools` are the whole agent. `http_tools`: the client's tools the graph names, secrets included.
    graph: dict = field(default_factory=dict)
    http_tools: tuple[dict, ...] = ()
    mcp_servers: tuple[dict, ...] = ()  # {"name", "url", "headers", "timeout_secs"}: nodes list "mcp:<name>"
    variables: dict = field(default_factory=dict)  # {"caller": {"number": ...}, "call": {...}}
    time_zone: str = "UTC"
    # Pre-recorded clips ({"name", "words", "tags", "interruptible", "pcm"}: 8 kHz 16-bit mono), see
    # apps/voice/processors/clips.py; the STT dictionary, post-corrected unless the vendor boosted it.
    clips: tuple[dict, ...] = ()
    stt_dictionary: tuple[str, ...] = ()
    stt_dictionary_boosted: bool = False
    # One speech-to-speech model instead of STT -> LLM -> TTS (apps.voice.pipeline.build_s2s_pipeline).
    speech_to_speech: bool = False
    # Outbound calls with voicemail detection (apps.voice.voicemail): classify the callee's first words;
    # on a machine wait for the greeting to end, say `voicemail_message`, hang up (end reason voicemail).
    voicemail_detection: bool = False
    voicemail_message: str = ""
    # How long the callee must stay quiet after a machine greeting before the message (the beep is short).
    voicemail_quiet_secs: float = 1.0
    # How long the classifier listens to the callee before deciding "human" (seconds since the call started).
    voicemail_listen_secs: float = 8.0
    # Ask the call's LLM when the rules cannot tell a greeting from a person (settings.VOICEMAIL_LLM_CLASSIFIER).
    voicemail_llm: bool = False
