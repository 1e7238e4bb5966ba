"""Silero VAD shared by every call in the process, batched.

Pipecat's `SileroVADAnalyzer` loads its own ONNX session per call (~190 ms of
blocking work on the event loop at call start, ~9 MB of RSS per call) and runs
each 256-sample window in a thread of its own. Here one ONNX session serves the
whole process: each call keeps only its recurrent state (2×128 floats) and its
32-sample context, and the windows of all calls waiting at a given moment are
scored together, in one batched run, on one worker thread (ONNX releases the
GIL, so the event loop keeps running meanwhile). A window waits at most
BATCH_WINDOW_SECS for the others, so there are at most ~100 runs a second
however many calls are live: the per-window cost falls as load rises. Audio
that may decide a caller's stop (the VAD's countdown to "stopped speaking" would
end within it) does not wait out that window: the stop starts the agent's reply,
so that audio is scored at once, with whatever else is waiting.

The speech state machine is Pipecat's (`VADAnalyzer._run_analyzer`, 1.14),
applied window by window with the batched confidences, and so is Silero's
periodic model reset.
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pipecat.audio.vad import silero
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

_CONTEXT = {8000: 32, 16000: 64}
_WINDOW = {8000: 256, 16000: 512}

_session = None
_session_lock = threading.Lock()
# One thread for every call's VAD: batches are scored one after another.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
# How long the first waiting window waits for other calls' windows. One ONNX run
# costs about the same for 1 row as for 30 on this kind of machine (measured on
# the 2-core box: ~0.3 ms back to back, ~4 ms when the model has gone cold in
# the cache between runs), so the number of runs per second is what costs CPU.
# Adds at most this much to when the caller's start/stop of speech is noticed.
BATCH_WINDOW_SECS = 0.01


def _onnx_session():
    """The process's Silero ONNX session, loaded once (thread-safe)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                from importlib import resources

                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.inter_op_num_threads = 1
                options.intra_op_num_threads = 1
                path = str(resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx"))
                _session = onnxruntime.InferenceSession(
                    path, providers=["CPUExecutionProvider"], sess_options=options
                )
    return _session


class SharedSileroVADAnalyzer(VADAnalyzer):
    """A `VADAnalyzer` whose model is the process-wide batched Silero session."""

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None):
        super().__init__(sample_rate=sample_rate, params=params)
        self._executor.shutdown(wait=False)  # never used: the batcher has its own thread
        self._reset_model_state()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        # When the current stretch of speech began (monotonic; read by the barge-in strategy).
        self.speech_onset: float | None = None

    def _reset_model_state(self) -> None:
        self._model_state = np.zeros((2, 1, 128), dtype=np.float32)
        self._model_context = None  # zeros of the right size on the first window

    def set_sample_rate(self, sample_rate: int):
        if (self._init_sample_rate or sample_rate) not in _WINDOW:
            raise ValueError(f"Silero VAD sample rate needs to be 16000 or 8000 (sample rate: {sample_rate})")
        super().set_sample_rate(sample_rate)

    @property
    def hears_speech(self) -> bool:
        """The latest window was speech (SPEAKING; not a pause inside speech, not yet STARTING)."""
        return self._vad_state == VADState.SPEAKING

    @property
    def counting_down(self) -> bool:
        """The caller went quiet after speech and the stop is not decided yet (STOPPING)."""
        return self._vad_state == VADState.STOPPING

    def stop_may_come_with(self, buffer: bytes) -> bool:
        """Scoring `buffer` could decide the stop: counting down, and its windows reach the count."""
        if self._vad_state != VADState.STOPPING:
            return False
        windows = (len(self._vad_buffer) + len(buffer)) // self._vad_frames_num_bytes
        return self._vad_stopping_count + windows >= self._vad_stop_frames

    def num_frames_required(self) -> int:
        return _WINDOW.get(self.sample_rate, 256)

    def voice_confidence(self, buffer: bytes) -> float:
        """One window on its own (not used on the call path, which batches)."""
        return float(_score_round([(self, _to_float(buffer))], self.sample_rate)[0])

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return await _batcher().analyze(self, buffer)

    async def cleanup(self):
        pass

    # -- one window, after its confidence is known (runs on the VAD thread) ---------------

    def _after_window(self, window: bytes, confidence: float) -> None:
        # Silero's periodic reset (pipecat.audio.vad.silero._maybe_reset_model).
        self._windows_since_reset += 1
        if confidence < silero._MODEL_RESET_MAX_CONFIDENCE:
            self._low_confidence_windows += 1
        else:
            self._low_confidence_windows = 0
        if (
            self._windows_since_reset * self.num_frames_required()
            >= silero._MODEL_RESET_INTERVAL_SECS * self.sample_rate
            and self._vad_state == VADState.QUIET
            and self._low_confidence_windows >= silero._MODEL_RESET_LOW_CONFIDENCE_WINDOWS
        ):
            self._reset_model_state()
            self._windows_since_reset = 0

        # Pipecat's VADAnalyzer._run_analyzer, loop body.
        volume = self._get_smoothed_volume(window)
        self._prev_volume = volume
        speaking = confidence >= self._params.confidence and volume >= self._params.min_volume
        state = self._vad_state
        if speaking:
            if state == VADState.QUIET:
                self._vad_state = VADState.STARTING
                self._vad_starting_count = 1
                self.speech_onset = time.monotonic()  # the first speech window of this run
            elif state == VADState.STARTING:
                self._vad_starting_count += 1
            elif state == VADState.STOPPING:
                self._vad_state = VADState.SPEAKING
                self._vad_stopping_count = 0
        else:
            if state == VADState.STARTING:
                self._vad_state = VADState.QUIET
                self._vad_starting_count = 0
            elif state == VADState.SPEAKING:
                self._vad_state = VADState.STOPPING
                self._vad_stopping_count = 1
            elif state == VADState.STOPPING:
                self._vad_stopping_count += 1

    def _settle(self) -> VADState:
        # Pipecat's VADAnalyzer._run_analyzer, after the loop.
        if self._vad_state == VADState.STARTING and self._vad_starting_count >= self._vad_start_frames:
            self._vad_state = VADState.SPEAKING
            self._vad_starting_count = 0
        if self._vad_state == VADState.STOPPING and self._vad_stopping_count >= self._vad_stop_frames:
            self._vad_state = VADState.QUIET
            self._vad_stopping_count = 0
        return self._vad_state


def _to_float(window: bytes) -> np.ndarray:
    return np.frombuffer(window, dtype=np.int16).astype(np.float32) / 32768.0


def _score_round(items: list[tuple[SharedSileroVADAnalyzer, np.ndarray]], sample_rate: int) -> np.ndarray:
    """Score one window for each analyzer in one ONNX run; updates their model state."""
    context_size = _CONTEXT[sample_rate]
    inputs = np.empty((len(items), context_size + _WINDOW[sample_rate]), dtype=np.float32)
    state = np.empty((2, len(items), 128), dtype=np.float32)
    for row, (analyzer, samples) in enumerate(items):
        context = analyzer._model_context
        if context is None:
            inputs[row, :context_size] = 0.0
        else:
            inputs[row, :context_size] = context
        inputs[row, context_size:] = samples
        state[:, row, :] = analyzer._model_state[:, 0, :]
    out, new_state = _onnx_session().run(
        None, {"input": inputs, "state": state, "sr": np.array(sample_rate, dtype=np.int64)}
    )
    for row, (analyzer, _samples) in enumerate(items):
        analyzer._model_state = new_state[:, row : row + 1, :].copy()
        analyzer._model_context = inputs[row, -context_size:].copy()
    return out[:, 0]


def _run_batch(batch: list[tuple[SharedSileroVADAnalyzer, bytes]]) -> list[VADState]:
    """On the VAD thread: cut each call's audio into windows and score round by
    round (round k = every call's k-th window), in order within each call."""
    windows: list[list[bytes]] = []
    for analyzer, buffer in batch:
        analyzer._vad_buffer += buffer
        size = analyzer._vad_frames_num_bytes
        pending = analyzer._vad_buffer
        count = len(pending) // size
        windows.append([pending[i * size : (i + 1) * size] for i in range(count)])
        analyzer._vad_buffer = pending[count * size :]
    rounds = max((len(w) for w in windows), default=0)
    for k in range(rounds):
        by_rate: dict[int, list[int]] = {}
        for index, (analyzer, _buffer) in enumerate(batch):
            if len(windows[index]) > k:
                by_rate.setdefault(analyzer.sample_rate, []).append(index)
        for rate, indexes in by_rate.items():
            items = [(batch[i][0], _to_float(windows[i][k])) for i in indexes]
            confidences = _score_round(items, rate)
            for i, confidence in zip(indexes, confidences, strict=True):
                batch[i][0]._after_window(windows[i][k], float(confidence))
    return [analyzer._settle() if windows[index] else analyzer._vad_state
            for index, (analyzer, _buffer) in enumerate(batch)]


class _Batcher:
    """Collects the calls' audio while the VAD thread is busy; scores it in one go."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._pending: list[tuple[SharedSileroVADAnalyzer, bytes, asyncio.Future]] = []
        self._draining = False
        self._timer: asyncio.TimerHandle | None = None  # the batch window, while it runs

    async def analyze(self, analyzer: SharedSileroVADAnalyzer, buffer: bytes) -> VADState:
        future = self._loop.create_future()
        self._pending.append((analyzer, buffer, future))
        # This audio may end the caller's turn: it waits for no one. (The call's previous
        # batch is done - a call awaits each - so its state is not being written meanwhile.)
        urgent = analyzer.stop_may_come_with(buffer)
        if not self._draining:
            self._draining = True
            if urgent:
                self._start_drain()
            else:
                self._timer = self._loop.call_later(BATCH_WINDOW_SECS, self._start_drain)
        elif urgent and self._timer is not None:
            self._timer.cancel()
            self._start_drain()
        return await future

    def _start_drain(self) -> None:
        self._timer = None
        self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending, later = [], [], self._pending
                seen: set[int] = set()
                for item in later:  # one buffer per call per batch, in order
                    if id(item[0]) in seen:
                        self._pending.append(item)
                    else:
                        seen.add(id(item[0]))
                        batch.append(item)
                try:
                    items = [(analyzer, buffer) for analyzer, buffer, _f in batch]
                    states = await self._loop.run_in_executor(_executor, _run_batch, items)
                except Exception as error:  # never leave a call waiting
                    for _a, _b, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_a, _b, future), state in zip(batch, states, strict=True):
                    if not future.done():
                        future.set_result(state)
        finally:
            self._draining = False


_batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}


def _batcher() -> _Batcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        for stale in [known for known in _batchers if known.is_closed()]:
            del _batchers[stale]
        batcher = _batchers[loop] = _Batcher(loop)
    return batcher
