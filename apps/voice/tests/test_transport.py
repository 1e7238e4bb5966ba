"""The media transport pushes caller audio in 40 ms frames (two carrier messages), except while
the VAD counts down to "stopped speaking": then each message's audio goes at once, so the end of
the caller's turn is heard as soon as it arrives. Every byte is recorded either way."""
from apps.voice.transport import MediaStreamParams, MediaStreamTransport

MESSAGE = 320  # 20 ms of 8 kHz 16-bit PCM


async def _no_send(payload):
    return None


async def test_caller_audio_goes_in_40_ms_frames_and_at_once_while_the_vad_counts_down():
    transport = MediaStreamTransport(send=_no_send, params=MediaStreamParams(
        audio_in_enabled=True, audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    source = transport.input()
    pushed: list[bytes] = []

    async def capture(frame):
        pushed.append(frame.audio)

    source.push_audio_frame = capture
    # What start() sets from the StartFrame (8 kHz): started, 40 ms frames.
    source._started, source._frame_bytes = True, 8000 * 2 * 40 // 1000
    counting_down = False
    source.push_at_once_while(lambda: counting_down)

    messages = [bytes([n]) * MESSAGE for n in range(1, 8)]
    for message in messages[:3]:
        await transport.feed_audio(message)
    assert pushed == [messages[0] + messages[1]]  # the third waits for the fourth

    counting_down = True
    await transport.feed_audio(messages[3])
    await transport.feed_audio(messages[4])
    assert pushed[1:] == [messages[2] + messages[3], messages[4]]  # what was held, then each at once

    counting_down = False
    await transport.feed_audio(messages[5])
    await transport.feed_audio(messages[6])
    assert pushed[3:] == [messages[5] + messages[6]]
    assert transport.recorder.stereo_pcm()[::4] == b"".join(messages)[::2]  # caller track (left), all of it
