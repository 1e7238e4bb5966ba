"""The call's stereo recording (caller left, agent right), teed off the transport.

Replaces Pipecat's `AudioBufferProcessor`, which sat in the pipeline and so put
every caller and agent audio frame through one more queue and task. Carriers
send caller audio continuously (silence included), so the caller track is the
timeline: agent audio goes where the caller track has reached when it is sent,
padded with silence, or straight after the previous agent audio when the agent
is ahead (outbound audio runs a little ahead of real time).
"""
from __future__ import annotations

import numpy as np


class CallRecorder:
    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._caller = bytearray()
        self._agent = bytearray()

    def caller_audio(self, pcm: bytes) -> None:
        self._caller += pcm

    def agent_audio(self, pcm: bytes) -> None:
        gap = len(self._caller) - len(self._agent)
        if gap > 0:
            self._agent += bytes(gap)
        self._agent += pcm

    @property
    def has_audio(self) -> bool:
        return bool(self._caller or self._agent)

    def stereo_pcm(self) -> bytes:
        """Interleaved 16-bit stereo, both tracks padded to the same length."""
        frames = max(len(self._caller), len(self._agent)) // 2
        stereo = np.zeros((frames, 2), dtype=np.int16)
        caller = np.frombuffer(self._caller, dtype=np.int16)
        agent = np.frombuffer(self._agent, dtype=np.int16)
        stereo[: caller.size, 0] = caller
        stereo[: agent.size, 1] = agent
        return stereo.tobytes()
