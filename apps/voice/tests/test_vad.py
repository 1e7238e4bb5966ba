"""The batched, process-wide Silero (apps.voice.vad) decides exactly like Pipecat's own
SileroVADAnalyzer on real caller audio. It reaches into Pipecat's internals (the
state machine, Silero's periodic reset), so a Pipecat upgrade that changes either
must fail here, loudly, rather than change turn-taking quietly."""
import asyncio

import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from apps.voice.vad import SharedSileroVADAnalyzer
from devtools.doubles.audio import FIXTURES_DIR, read_wav

RATE = 8000
CHUNK = 320  # 20 ms of 16-bit PCM, what a carrier sends
SILENCE = b"\0" * (RATE * 2)  # 1 s


def _fixture_call() -> bytes:
    """Several utterances back to back with silences between: starts, stops, mid-sentence pauses."""
    names = ["hello.wav", "opening-hours.wav", "account-number.wav", "no.wav", "interrupt.wav"]
    audio = SILENCE
    for name in names:
        pcm, rate = read_wav(FIXTURES_DIR / name)
        assert rate == RATE
        audio += pcm + SILENCE
    return audio


async def _states(analyzer, audio: bytes) -> list[VADState]:
    analyzer.set_sample_rate(RATE)
    states = []
    for offset in range(0, len(audio) - CHUNK + 1, CHUNK):
        states.append(await analyzer.analyze_audio(audio[offset:offset + CHUNK]))
    return states


@pytest.mark.parametrize("stop_secs", [0.3, 0.8])
def test_batched_silero_decides_like_pipecats_analyzer_on_caller_audio(stop_secs):
    audio = _fixture_call()
    params = VADParams(stop_secs=stop_secs)
    theirs = asyncio.run(_states(SileroVADAnalyzer(sample_rate=RATE, params=params), audio))
    ours = asyncio.run(_states(SharedSileroVADAnalyzer(sample_rate=RATE, params=params), audio))
    assert len(ours) == len(theirs) > 800  # ~17 s of audio
    # The audio really exercises the state machine: speech found, and found to stop, several times.
    starts = sum(1 for before, after in zip(theirs, theirs[1:], strict=False)
                 if before != VADState.SPEAKING and after == VADState.SPEAKING)
    assert starts >= 5
    first_difference = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
    assert first_difference is None, f"first differs at {first_difference * 20} ms: ours {ours[first_difference]}, " \
                                     f"Pipecat's {theirs[first_difference]}"


def test_batched_silero_scores_each_window_like_pipecats_model():
    pcm, _ = read_wav(FIXTURES_DIR / "opening-hours.wav")
    theirs_analyzer = SileroVADAnalyzer(sample_rate=RATE)
    ours_analyzer = SharedSileroVADAnalyzer(sample_rate=RATE)
    theirs_analyzer.set_sample_rate(RATE)
    ours_analyzer.set_sample_rate(RATE)
    window = ours_analyzer.num_frames_required() * 2
    assert window == theirs_analyzer.num_frames_required() * 2
    pairs = []
    for offset in range(0, len(pcm) - window + 1, window):
        chunk = pcm[offset:offset + window]
        pairs.append((ours_analyzer.voice_confidence(chunk), theirs_analyzer.voice_confidence(chunk)))
    assert max(abs(ours - theirs) for ours, theirs in pairs) < 1e-4
    assert max(theirs for _, theirs in pairs) > 0.9  # speech in there, not only silence


async def test_a_caller_who_just_went_quiet_is_scored_without_waiting_for_the_batch_window(monkeypatch):
    """Audio waits up to BATCH_WINDOW_SECS for other calls' audio, except audio that may decide
    a caller's stop (the VAD's countdown ends within it): the stop starts the agent's reply, so
    it is scored at once, together with what was already waiting."""
    from apps.voice import vad

    monkeypatch.setattr(vad, "BATCH_WINDOW_SECS", 600.0)  # nobody is scored by the window in this test
    quiet, stopping = SharedSileroVADAnalyzer(sample_rate=RATE), SharedSileroVADAnalyzer(sample_rate=RATE)
    quiet.set_sample_rate(RATE)
    stopping.set_sample_rate(RATE)
    window = SILENCE[: quiet.num_frames_required() * 2]
    # The caller went quiet and one more quiet window ends the countdown.
    stopping._vad_state, stopping._vad_stopping_count = VADState.STOPPING, stopping._vad_stop_frames - 1
    assert stopping.stop_may_come_with(window) and not stopping.stop_may_come_with(window[:-2])
    stopping._vad_stopping_count -= 1
    assert not stopping.stop_may_come_with(window)  # two windows to go: this one waits like any other
    stopping._vad_stopping_count += 1

    waiting = asyncio.ensure_future(quiet.analyze_audio(window))
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done  # waiting for the window (600 s)

    assert await asyncio.wait_for(stopping.analyze_audio(window), 60) == VADState.QUIET  # the stop, at once
    assert await asyncio.wait_for(waiting, 60) == VADState.QUIET  # scored in the same run
