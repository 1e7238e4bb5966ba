"""From a call that `apps.calls.services.call_stream_start` accepted to a running
session: the agent's stage services built through the provider registry (off the
event loop), or, when the call cannot run, a session that only says the fallback
line in the local Piper voice (no key, no network, so it cannot be the thing that
failed)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from apps.voice.config import VoiceConfig
from apps.voice.session import CallSession, FallbackSession
from apps.voice.transport import MediaStreamTransport

logger = logging.getLogger(__name__)

FALLBACK_TTS_PROVIDER = "piper"


def voice_config(runtime) -> VoiceConfig:
    """The runtime's view of an AgentRuntimeConfig."""
    defaults = VoiceConfig()
    return VoiceConfig(
        greeting=runtime.greeting,
        system_prompt=runtime.system_prompt,
        language=runtime.language,
        vad_stop_secs=runtime.vad_stop_secs,
        allow_interruptions=runtime.allow_interruptions,
        interrupt_after_words=runtime.interrupt_after_words,
        acknowledgements=tuple(runtime.acknowledgements),
        end_of_turn_model=runtime.end_of_turn_model,
        idle_timeout_secs=runtime.idle_timeout_secs,
        max_call_secs=runtime.max_call_secs,
        end_call_phrases=tuple(runtime.end_call_phrases),
        tools=tuple(runtime.tools),
        transfer_number=runtime.transfer_number,
        fallback_line=runtime.fallback_line or defaults.fallback_line,
        # Platform-wide: how long an LLM may stay silent before the caller hears the fallback line.
        provider_timeout_secs=settings.VOICE_PROVIDER_TIMEOUT_SECS,
        heartbeat_secs=settings.CALL_HEARTBEAT_SECS,
        graph=runtime.graph,
        http_tools=tuple(runtime.http_tools),
        mcp_servers=tuple(runtime.mcp_servers),
        variables=runtime.variables,
        time_zone=runtime.time_zone,
        clips=tuple(runtime.clips),
        stt_dictionary=tuple(runtime.stt_dictionary),
        stt_dictionary_boosted=_boosts(runtime.stt.provider),
        speech_to_speech=runtime.s2s is not None,
        # Only an outbound call can reach someone's voicemail.
        voicemail_detection=bool(runtime.voicemail_detection
                                 and (runtime.variables or {}).get("call", {}).get("direction") == "outbound"),
        voicemail_message=runtime.voicemail_message,
        voicemail_llm=settings.VOICEMAIL_LLM_CLASSIFIER,
    )


def _boosts(provider: str) -> bool:
    from apps.providers.registry import stt_boosts_vocabulary

    return stt_boosts_vocabulary(provider)


def _build_stage_services(runtime, sample_rate: int):
    from apps.providers.registry import build_llm, build_stt, build_tts

    standby = build_llm(runtime.llm_standby) if runtime.llm_standby is not None else None
    return (build_stt(runtime.stt, sample_rate=sample_rate), build_llm(runtime.llm),
            build_tts(runtime.tts, sample_rate=sample_rate), standby)


def _build_s2s_services(runtime, sample_rate: int):
    """The speech-to-speech service and the local voice for the agent's fixed lines."""
    from apps.providers.registry import build_s2s

    s2s = build_s2s(runtime.s2s, sample_rate=sample_rate, silence_secs=runtime.vad_stop_secs,
                    language_code=runtime.language)
    return s2s, _build_fallback_tts(sample_rate)


def _build_fallback_tts(sample_rate: int):
    from apps.agents.selectors import ProviderSpec
    from apps.providers.registry import build_tts

    return build_tts(ProviderSpec(kind="tts", provider=FALLBACK_TTS_PROVIDER), sample_rate=sample_rate)


async def session_for_call(*, started, transport: MediaStreamTransport, hooks, sample_rate: int,
                           on_build_failed: Callable[[str], Awaitable[None]]) -> CallSession | FallbackSession:
    """`started`: a CallStart. `on_build_failed(error)` ends the call record when the
    agent's services cannot be built (the record of a `started.failure` is already ended)."""
    fallback_line = started.fallback_line or VoiceConfig().fallback_line
    failure = started.failure
    if not failure:
        runtime = started.runtime
        try:
            # Off the event loop: each service builds an HTTP client with its own TLS
            # context (~10-20 ms of CPU apiece), which would stall every other live call.
            if runtime.s2s is not None:
                s2s, lines_tts = await asyncio.to_thread(_build_s2s_services, runtime, sample_rate)
            else:
                stt, llm, tts, llm_standby = await asyncio.to_thread(_build_stage_services, runtime, sample_rate)
        except Exception as error:  # noqa: BLE001 - a vendor's constructor refused: the caller still hears us
            logger.exception("call %s: the agent's services could not be built", started.call_id)
            failure = f"could not start the agent's services: {error}"
            await on_build_failed(failure)
        else:
            if runtime.s2s is not None:
                return CallSession(config=voice_config(runtime), transport=transport, s2s=s2s, lines_tts=lines_tts,
                                   hooks=hooks, key_ids={"speech_to_speech": runtime.s2s.key_id})
            return CallSession(
                config=voice_config(runtime), transport=transport, stt=stt, llm=llm, tts=tts, hooks=hooks,
                key_ids={"stt": runtime.stt.key_id, "llm": runtime.llm.key_id, "tts": runtime.tts.key_id},
                llm_standby=llm_standby,
                llm_standby_key=runtime.llm_standby.key_id if runtime.llm_standby is not None else None,
                trace=getattr(started, "trace", None),
            )
    tts = await asyncio.to_thread(_build_fallback_tts, sample_rate)
    return FallbackSession(line=fallback_line, error=failure, transport=transport, tts=tts, hooks=hooks,
                           sample_rate=sample_rate)
