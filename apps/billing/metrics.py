"""The metrics Switchboard meters, with their raw unit. Pure (no Django models)."""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    CALL_SECONDS_INBOUND = "call_seconds_inbound"  # connected call time, per-client rounding rule applies
    CALL_SECONDS_OUTBOUND = "call_seconds_outbound"
    CARRIER_SECONDS = "carrier_seconds"  # what the carrier bills us (dimension: carrier product)
    STT_SECONDS = "stt_seconds"  # dimension: STT model
    LLM_INPUT_TOKENS = "llm_input_tokens"  # dimension: LLM model
    LLM_OUTPUT_TOKENS = "llm_output_tokens"
    LLM_CACHED_TOKENS = "llm_cached_tokens"
    TTS_CHARACTERS = "tts_characters"  # dimension: voice / TTS model
    # Speech-to-speech models (OpenAI Realtime, Gemini Live), dimension: model. Audio and text are priced apart.
    S2S_INPUT_AUDIO_TOKENS = "s2s_input_audio_tokens"
    S2S_OUTPUT_AUDIO_TOKENS = "s2s_output_audio_tokens"
    S2S_INPUT_TEXT_TOKENS = "s2s_input_text_tokens"
    S2S_OUTPUT_TEXT_TOKENS = "s2s_output_text_tokens"
    CLIP_PLAYS = "clip_plays"  # pre-recorded audio clips played
    QA_RUNS = "qa_runs"  # post-call QA evaluations
    PHONE_NUMBER_MONTHS = "phone_number_months"  # one per number per month held


METRIC_UNITS: dict[str, str] = {
    Metric.CALL_SECONDS_INBOUND: "second",
    Metric.CALL_SECONDS_OUTBOUND: "second",
    Metric.CARRIER_SECONDS: "second",
    Metric.STT_SECONDS: "second",
    Metric.LLM_INPUT_TOKENS: "token",
    Metric.LLM_OUTPUT_TOKENS: "token",
    Metric.LLM_CACHED_TOKENS: "token",
    Metric.TTS_CHARACTERS: "character",
    Metric.S2S_INPUT_AUDIO_TOKENS: "token",
    Metric.S2S_OUTPUT_AUDIO_TOKENS: "token",
    Metric.S2S_INPUT_TEXT_TOKENS: "token",
    Metric.S2S_OUTPUT_TEXT_TOKENS: "token",
    Metric.CLIP_PLAYS: "play",
    Metric.QA_RUNS: "run",
    Metric.PHONE_NUMBER_MONTHS: "number-month",
}

# Metrics rated with the client's per-call rounding rule (increment, minimum seconds).
CALL_SECONDS_METRICS: frozenset[str] = frozenset({Metric.CALL_SECONDS_INBOUND, Metric.CALL_SECONDS_OUTBOUND})

METRIC_CHOICES = [(metric.value, metric.value.replace("_", " ")) for metric in Metric]
