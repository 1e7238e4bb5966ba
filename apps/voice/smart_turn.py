"""Pipecat's Smart Turn v3 end-of-turn model, shared by every call in the process.

`LocalSmartTurnAnalyzerV3` loads its own ONNX session per analyzer (the bundled
8.7 MB model: ~45 ms of blocking work at call start and tens of MB of RSS per call)
and starts a thread of its own per analyzer. Here one session, loaded once, serves
every call, and every call's inference runs on one shared worker thread (ONNX
releases the GIL, so the event loop keeps running; turns end a few times a minute
per call, so one thread keeps up). Each call keeps only its own audio buffer.

Pipecat runs the model when the VAD reports the end of speech, which puts the
inference (50-200 ms on a busy 2-core box) on the reply's path. With the call's VAD
analyzer at hand, this one starts it speculatively once the caller has been quiet
for EARLY_SECS, on the audio so far, and the VAD's stop (`vad_stop_secs` into the
pause) takes that verdict if the caller stayed quiet meanwhile.

The analyzer also remembers why it last declared the turn over, for the per-turn
trace: "end_of_turn_model" (the model said complete) or "silence" (the caller stayed
quiet for `stop_secs`, whatever the model thought).
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

MODEL_NAME = "smart-turn-v3.2-cpu.onnx"
END_OF_TURN_MODEL = "end_of_turn_model"
SILENCE = "silence"
# Quiet this long (by the VAD's latest windows) and the model is asked ahead of the VAD's stop.
EARLY_SECS = 0.2

_session = None
_session_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


def _onnx_session():
    """The process's Smart Turn ONNX session, loaded once (thread-safe), with the
    options Pipecat's analyzer uses."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                from importlib import resources

                import onnxruntime as ort

                options = ort.SessionOptions()
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.inter_op_num_threads = 1
                options.intra_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                path = str(resources.files("pipecat.audio.turn.smart_turn.data").joinpath(MODEL_NAME))
                _session = ort.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=options)
    return _session


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """Pipecat's local Smart Turn v3 analyzer over the process-wide model and thread."""

    def __init__(self, *, sample_rate: int | None = None, params: SmartTurnParams | None = None,
                 vad_analyzer=None):
        """`vad_analyzer`: the call's `SharedSileroVADAnalyzer` (its `hears_speech`), for
        the speculative inference; without it the model runs at the VAD's stop, as in Pipecat."""
        # Not LocalSmartTurnAnalyzerV3.__init__: that loads a session of its own.
        super(LocalSmartTurnAnalyzerV3, self).__init__(sample_rate=sample_rate, params=params)
        self._log_data = False
        self.end_reason = ""
        self._vad = vad_analyzer
        self._quiet_secs = 0.0
        self._early: asyncio.Future | None = None
        if _session is None:  # load it on the model's thread, not on the event loop
            _executor.submit(_onnx_session)

    @property
    def _session(self):
        return _onnx_session()  # read on the model's thread (`_predict_endpoint`)

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return _executor

    async def cleanup(self):
        pass  # the thread and the model belong to the process

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        state = super().append_audio(buffer, is_speech)
        if is_speech:
            self.end_reason = ""
            self._maybe_start_early(buffer)
        elif state == EndOfTurnState.COMPLETE:
            self.end_reason = SILENCE
        return state

    def _maybe_start_early(self, buffer: bytes) -> None:
        """Between the VAD's start and stop: count the caller's quiet; past EARLY_SECS ask the model."""
        if self._vad is None or not self._sample_rate:
            return
        if self._vad.hears_speech:
            self._quiet_secs, self._early = 0.0, None
            return
        self._quiet_secs += len(buffer) / 2 / self._sample_rate
        if self._quiet_secs >= EARLY_SECS and self._early is None and self._speech_triggered:
            loop = asyncio.get_running_loop()
            self._early = loop.run_in_executor(_executor, self._process_speech_segment, list(self._audio_buffer))

    async def analyze_end_of_turn(self):
        early, self._early, self._quiet_secs = self._early, None, 0.0
        if early is not None:  # asked during this very pause: the caller has said nothing since
            state, metrics = await early
            if state == EndOfTurnState.COMPLETE:
                self._clear(state)
        else:
            state, metrics = await super().analyze_end_of_turn()
        if state == EndOfTurnState.COMPLETE and self.end_reason != SILENCE:
            self.end_reason = END_OF_TURN_MODEL
        return state, metrics

    def clear(self):
        self._early, self._quiet_secs = None, 0.0
        super().clear()
