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


async def test_caller_audio_from_before_the_pipeline_started_is_pushed_first_not_lost():
    """The stream's first messages queue up while the call is set up and can reach the transport
    before the pipeline's start does: the caller may already be talking."""
    transport = MediaStreamTransport(send=_no_send, params=MediaStreamParams(
        audio_in_enabled=True, audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    source = transport.input()
    pushed: list[bytes] = []

    async def capture(frame):
        pushed.append(frame.audio)

    source.push_audio_frame = capture
    source._frame_bytes = 8000 * 2 * 40 // 1000
    messages = [bytes([n]) * MESSAGE for n in range(1, 7)]
    for message in messages[:5]:  # before the start
        await transport.feed_audio(message)
    assert pushed == []

    source._started = True  # what start() sets once the StartFrame is here
    await transport.feed_audio(messages[5])
    assert pushed == [messages[0] + messages[1], messages[2] + messages[3], messages[4] + messages[5]]
    assert transport.recorder.stereo_pcm()[::4] == b"".join(messages)[::2]  # recorded, in order
