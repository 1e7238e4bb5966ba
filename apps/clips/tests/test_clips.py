"""The clip library: uploads normalised to 8 kHz mono 16-bit PCM WAV (WAV and MP3, no ffmpeg),
clear refusals that store nothing, the portal (upload, list, preview, delete), the API,
what a call carries, and clip plays metered below text-to-speech."""
from __future__ import annotations

import io
import wave
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
import soundfile
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from apps.agents.tests.test_hostile_input import client_admin  # noqa: F401 (the client admin, through support)
from apps.clips.models import Clip
from apps.clips.selectors import clip_audio_bytes, clips_for_runtime
from apps.clips.services import clip_create, clip_delete
from apps.core.errors import ApplicationError
from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401 (portal user fixtures)
from apps.telephony.tests.conftest import make_agent
from apps.tenancy.models import AuditLogEntry

HOST = {"HTTP_HOST": "acme.localhost"}


def sine(secs: float, rate: int, *, channels: int = 1, amplitude: float = 0.3, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(secs * rate)) / rate
    mono = amplitude * np.sin(2 * np.pi * hz * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def stored_wav(clip: Clip) -> tuple[int, int, int, int]:
    """(channels, rate, sample width, frames) of the stored file."""
    with wave.open(io.BytesIO(clip_audio_bytes(clip=clip))) as wav:
        return wav.getnchannels(), wav.getframerate(), wav.getsampwidth(), wav.getnframes()


def test_a_stereo_44k_wav_is_stored_as_8k_mono_pcm_and_peak_normalised(tenant_a):
    with tenant_context(tenant_a):
        clip = clip_create(name="one-moment", words="  One moment,\n please. ", tags=["hold", "confirmation"],
                           audio=encoded(sine(1.5, 44100, channels=2), 44100, "WAV", "PCM_24"), filename="moment.wav")
        assert (clip.name, clip.words, clip.tags, clip.interruptible, clip.duration_ms, clip.original_name) == (
            "one-moment", "One moment, please.", ["confirmation", "hold"], True, 1500, "moment.wav")
        assert stored_wav(clip) == (1, 8000, 2, 12000)
        assert clip.audio.name.startswith("clips/acme/one-moment") and clip.audio.name.endswith(".wav")
        pcm = np.frombuffer(wave.open(io.BytesIO(clip_audio_bytes(clip=clip))).readframes(12000), dtype=np.int16)
        assert int(np.abs(pcm).max()) == pytest.approx(0.7 * 32767, rel=0.02)  # -3 dBFS whatever was uploaded
        entry = AuditLogEntry.objects.get(event_type="clip_uploaded")
        assert (entry.client, entry.target_repr) == (tenant_a, "one-moment")


def test_an_mp3_is_decoded_without_ffmpeg(tenant_a):
    with tenant_context(tenant_a):
        clip = clip_create(name="welcome", words="Welcome to Acme.", audio=encoded(sine(2.0, 22050), 22050, "MP3"),
                           filename="welcome.mp3")
        channels, rate, width, frames = stored_wav(clip)
        assert (channels, rate, width) == (1, 8000, 2)
        assert frames == pytest.approx(16000, abs=800)  # MP3 pads a frame or so


@pytest.mark.parametrize(("audio", "message"), [
    (b"", "welcome.wav is empty: upload a WAV or MP3 recording."),
    (b"this is not audio at all" * 10, "welcome.wav is not audio we can read: upload a WAV or MP3 file."),
    (encoded(sine(31.0, 8000), 8000, "WAV"), "welcome.wav lasts 31.0 s; a clip may last at most 30 s."),
    (encoded(sine(0.1, 8000), 8000, "WAV"), "welcome.wav lasts 0.10 s; a clip must last at least 0.2 s."),
    (encoded(np.zeros(8000), 8000, "WAV"), "welcome.wav is silent."),
])
def test_bad_audio_is_refused_and_nothing_is_stored(tenant_a, audio, message):
    def files():
        return set(default_storage.listdir("clips/acme")[1]) if default_storage.exists("clips/acme") else set()

    with tenant_context(tenant_a):
        before = files()
        with pytest.raises(ApplicationError) as refused:
            clip_create(name="welcome", words="Welcome.", audio=audio, filename="welcome.wav")
        assert refused.value.message == message
        assert refused.value.details == {"field": "audio"}
        assert Clip.objects.count() == 0
        assert files() == before


def test_bad_names_tags_words_and_taken_names_are_refused(tenant_a):
    good = encoded(sine(1.0, 8000), 8000, "WAV")
    with tenant_context(tenant_a):
        agent = make_agent("Reception")
        clip_create(name="welcome", words="Welcome.", audio=good)
        cases = [
            (dict(name="Not OK!", words="x"), "name"),
            (dict(name="fine", words="   "), "words"),
            (dict(name="fine", words="x", tags=["greeting", "jingle"]), "tags"),
            (dict(name="welcome", words="Again."), "name"),
        ]
        for kwargs, field in cases:
            with pytest.raises(ApplicationError) as refused:
                clip_create(audio=good, **kwargs)
            assert refused.value.details == {"field": field}
        assert str(pytest.raises(ApplicationError, clip_create, name="welcome", words="Again.", audio=good).value) == (
            "A clip named 'welcome' already exists for this client.")
        # The same name for one agent is another clip, and wins for that agent.
        clip_create(name="welcome", words="Welcome to reception.", audio=good, agent=agent, interruptible=False)
        assert Clip.objects.count() == 2
        runtime = clips_for_runtime(agent_id=agent.pk)
        assert [(c["name"], c["words"], c["interruptible"]) for c in runtime] == [
            ("welcome", "Welcome to reception.", False)]
        assert len(runtime[0]["pcm"]) == 16000  # 1 s of 8 kHz 16-bit
        other = make_agent("Sales")
        assert [c["words"] for c in clips_for_runtime(agent_id=other.pk)] == ["Welcome."]


def test_a_call_carries_the_agents_clips_and_dictionary(tenant_a):
    from apps.agents.selectors import agent_runtime_config
    from apps.agents.services import agent_save
    from apps.voice.launch import voice_config

    with tenant_context(tenant_a):
        agent = make_agent("Reception")
        agent = agent_save(agent=agent, stt_dictionary=[" KYC ", "ESOPs", "KYC"])
        clip_create(name="one-moment", words="One moment.", tags=["hold"], audio=encoded(sine(0.5, 8000), 8000, "WAV"))
        runtime = agent_runtime_config(agent_version=agent.current_version)
    assert agent.current_version.stt_dictionary == ["KYC", "ESOPs"]
    assert runtime.stt_dictionary == ("KYC", "ESOPs") and runtime.stt.vocabulary == ("KYC", "ESOPs")
    assert [(c["name"], c["tags"], len(c["pcm"])) for c in runtime.clips] == [("one-moment", ["hold"], 8000)]
    config = voice_config(runtime)
    assert config.clips == runtime.clips and config.stt_dictionary == ("KYC", "ESOPs")
    assert (runtime.stt.provider, config.stt_dictionary_boosted) == ("deepgram", True)  # keyterms, no post-correction


def test_an_absurd_dictionary_is_refused_naming_the_field(tenant_a):
    from apps.agents.services import agent_save

    with tenant_context(tenant_a):
        agent = make_agent("Reception")
        for terms, message in [("KYC", "The STT dictionary must be a list of words or phrases."),
                               (["KYC", " "], "Dictionary entries must not be blank."),
                               (["x"] * 101, "At most 100 dictionary entries, not 101.")]:
            with pytest.raises(ApplicationError) as refused:
                agent_save(agent=agent, stt_dictionary=terms)
            assert refused.value.details["stt_dictionary"] == message
        assert agent.versions.count() == 1


def test_vendors_that_boost_get_the_dictionary_in_their_own_words():
    from apps.agents.selectors import ProviderSpec
    from apps.providers.registry import build_stt, stt_boosts_vocabulary

    deepgram = build_stt(ProviderSpec(kind="stt", provider="deepgram", settings={"model": "nova-3"}, api_key="k",
                                      vocabulary=("KYC", "assets under management")))
    assert deepgram._settings.keyterm == ["KYC", "assets under management"]
    nova2 = build_stt(ProviderSpec(kind="stt", provider="deepgram", settings={"model": "nova-2"}, api_key="k",
                                   vocabulary=("KYC", "assets under management")))
    assert nova2._settings.keywords == ["KYC"]  # keywords are single words
    openai = build_stt(ProviderSpec(kind="stt", provider="openai", settings={"model": "whisper-1", "prompt": "Banking."},
                                    api_key="k", vocabulary=("KYC", "AUM")))
    assert openai._settings.prompt == "Banking. Vocabulary: KYC, AUM."
    speechmatics = build_stt(ProviderSpec(kind="stt", provider="speechmatics", api_key="k", vocabulary=("ESOPs",)))
    assert [entry.content for entry in speechmatics._settings.additional_vocab] == ["ESOPs"]
    assert [stt_boosts_vocabulary(name) for name in ("deepgram", "openai", "speechmatics", "openai_compatible",
                                                      "sarvam")] == [True, True, True, False, False]


# -- the portal --------------------------------------------------------------------------------------------------


def test_portal_upload_list_preview_and_delete(client, tenant_a, acme_admin):  # noqa: F811
    with tenant_context(tenant_a):
        agent = make_agent("Reception")
    client.force_login(acme_admin)
    upload = io.BytesIO(encoded(sine(1.0, 16000), 16000, "WAV"))
    upload.name = "moment.wav"
    response = client.post("/clips/", {"name": "one-moment", "words": "One moment please.", "tags": ["hold"],
                                       "interruptible": "on", "agent": str(agent.pk), "audio": upload}, **HOST)
    assert response.status_code == 302 and response["Location"] == "/clips/"
    with tenant_context(tenant_a):
        clip = Clip.objects.get()
        assert (clip.agent_id, clip.tags, clip.duration_ms) == (agent.pk, ["hold"], 1000)
    page = client.get("/clips/", **HOST).content.decode()
    assert "One moment please." in page and f'src="/clips/{clip.pk}/audio/"' in page
    preview = client.get(f"/clips/{clip.pk}/audio/", **HOST)
    assert preview.status_code == 200 and preview["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(b"".join(preview.streaming_content))) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 8000, 8000)
    response = client.post(f"/clips/{clip.pk}/delete/", **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert Clip.objects.count() == 0
        assert AuditLogEntry.objects.filter(event_type="clip_deleted", target_repr="one-moment").count() == 1


def test_portal_refusal_shows_under_the_field_and_keeps_nothing(client, tenant_a, acme_admin):  # noqa: F811
    client.force_login(acme_admin)
    upload = io.BytesIO(encoded(sine(40.0, 8000), 8000, "WAV"))
    upload.name = "long.wav"
    response = client.post("/clips/", {"name": "long", "words": "A long one.", "audio": upload}, **HOST)
    assert response.status_code == 400
    assert "long.wav lasts 40.0 s; a clip may last at most 30 s." in response.content.decode()
    with tenant_context(tenant_a):
        assert Clip.objects.count() == 0


def test_viewers_list_and_preview_but_do_not_upload_or_delete(client, tenant_a, acme_viewer):  # noqa: F811
    with tenant_context(tenant_a):
        clip = clip_create(name="welcome", words="Welcome.", audio=encoded(sine(0.5, 8000), 8000, "WAV"))
    client.force_login(acme_viewer)
    page = client.get("/clips/", **HOST).content.decode()
    assert "Welcome." in page and "Upload a clip" not in page
    assert client.get(f"/clips/{clip.pk}/audio/", **HOST).status_code == 200
    upload = io.BytesIO(encoded(sine(0.5, 8000), 8000, "WAV"))
    upload.name = "x.wav"
    assert client.post("/clips/", {"name": "x", "words": "x", "audio": upload}, **HOST).status_code == 403
    assert client.post(f"/clips/{clip.pk}/delete/", **HOST).status_code == 403
    with tenant_context(tenant_a):
        assert list(Clip.objects.values_list("name", flat=True)) == ["welcome"]


def test_another_clients_clip_is_not_found(client, tenant_a, tenant_b, acme_admin):  # noqa: F811
    with tenant_context(tenant_b):
        other = clip_create(name="globex", words="Globex.", audio=encoded(sine(0.5, 8000), 8000, "WAV"))
    client.force_login(acme_admin)
    assert client.get(f"/clips/{other.pk}/audio/", **HOST).status_code == 404
    assert client.post(f"/clips/{other.pk}/delete/", **HOST).status_code == 404
    with tenant_context(tenant_b):
        assert Clip.objects.count() == 1


# -- the API -----------------------------------------------------------------------------------------------------


def test_api_upload_list_audio_and_delete(client, tenant_a, tenant_b):
    from apps.api.services import api_key_create

    with tenant_context(tenant_b):
        globex = clip_create(name="globex", words="Globex secret.", audio=encoded(sine(0.5, 8000), 8000, "WAV"))
    with tenant_context(tenant_a):
        _, token = api_key_create(name="ci")
    auth = {**HOST, "HTTP_AUTHORIZATION": f"Bearer {token}"}
    upload = io.BytesIO(encoded(sine(0.8, 8000), 8000, "WAV"))
    upload.name = "ok.wav"
    created = client.post("/api/v1/clips", {"name": "okay", "words": "Okay.", "tags": "confirmation, hold",
                                            "interruptible": "false", "audio": upload}, **auth)
    assert created.status_code == 201, created.content
    body = created.json()
    assert {key: body[key] for key in ("name", "words", "tags", "interruptible", "agent_id", "duration_ms")} == {
        "name": "okay", "words": "Okay.", "tags": ["confirmation", "hold"], "interruptible": False, "agent_id": None,
        "duration_ms": 800}
    assert [clip["name"] for clip in client.get("/api/v1/clips", **auth).json()] == ["okay"]
    audio = client.get(f"/api/v1/clips/{body['id']}/audio", **auth)
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav"
    bad = io.BytesIO(b"nope")
    bad.name = "bad.mp3"
    refused = client.post("/api/v1/clips", {"name": "bad", "words": "Bad.", "audio": bad}, **auth)
    assert refused.status_code == 400
    assert refused.json() == {"error": "bad.mp3 is not audio we can read: upload a WAV or MP3 file.",
                              "details": {"field": "audio"}}
    assert client.delete(f"/api/v1/clips/{body['id']}", **auth).status_code == 204
    with tenant_context(tenant_a):
        assert Clip.objects.count() == 0
    # Another client's clip is not found with this client's key.
    for response in (client.get(f"/api/v1/clips/{globex.pk}", **auth),
                     client.get(f"/api/v1/clips/{globex.pk}/audio", **auth),
                     client.delete(f"/api/v1/clips/{globex.pk}", **auth)):
        assert response.status_code == 404
    with tenant_context(tenant_b):
        assert Clip.objects.count() == 1


def test_deleting_a_clip_removes_its_file_once_committed(tenant_a, django_capture_on_commit_callbacks):
    with tenant_context(tenant_a):
        clip = clip_create(name="bye", words="Bye.", audio=encoded(sine(0.5, 8000), 8000, "WAV"))
        name = clip.audio.name
        with django_capture_on_commit_callbacks(execute=True):
            clip_delete(clip=clip)
    assert not default_storage.exists(name)


# -- metering ----------------------------------------------------------------------------------------------------


def test_clip_plays_are_traced_metered_and_priced_below_the_speech_they_replace(
        client, tenant_a, acme_admin, django_capture_on_commit_callbacks, celery_eager):  # noqa: F811
    from apps.billing.models import UsageEvent
    from apps.billing.pricing import rate_quantity
    from apps.billing.seeds import seed_demo_data
    from apps.billing.selectors import rate_card_resolve
    from apps.calls.models import CallUsage, Turn
    from apps.calls.services import call_answered, call_end, call_turn_record
    from apps.calls.tests.conftest import make_call

    call = make_call(tenant_a, "+15550001000")
    with tenant_context(tenant_a):
        call_answered(call_id=call.pk)
        call_turn_record(call_id=call.pk, turn={"index": 0, "bot_text": "One moment please.",
                                                "clips": [{"name": "one-moment", "source": "hold"}]})
        assert Turn.objects.get(call=call).clips == [{"name": "one-moment", "source": "hold"}]
    client.force_login(acme_admin)
    page = client.get(f"/calls/{call.pk}/", **HOST).content.decode()
    assert "🔊 clip <code>one-moment</code> <span class=\"muted\">(hold)</span>" in page
    with tenant_context(tenant_a):
        with django_capture_on_commit_callbacks(execute=True):
            call_end(call_id=call.pk, end_reason="caller_hung_up",
                     usage={"call_seconds": 10, "clip_plays": 3, "tts_characters": {"alloy": 40}})
        assert CallUsage.objects.get(call=call, metric="clip_plays").quantity == Decimal("3.000")
        assert CallUsage.objects.get(call=call, metric="clip_plays").provider == ""
    event = UsageEvent.objects.get(client=tenant_a, call_id=str(call.pk), metric="clip_plays")
    assert (event.quantity, event.provider_cost) == (Decimal("3.000"), Decimal("0"))

    seed_demo_data(client=tenant_a)
    prices = {price.metric: price for price in rate_card_resolve(client=tenant_a, period_start=date(2026, 1, 1)).prices}
    clip_price = rate_quantity(prices["clip_plays"], Decimal("1"))
    speech_price = rate_quantity(prices["tts_characters"], Decimal(len("One moment please.")))
    assert clip_price == Decimal("0.002")
    assert clip_price < speech_price


# -- the client admin --------------------------------------------------------------------------------------------


def test_client_admin_uploads_previews_refuses_and_deletes(tenant_a, client_admin):  # noqa: F811
    upload = io.BytesIO(encoded(sine(1.0, 8000), 8000, "WAV"))
    upload.name = "thanks.wav"
    response = client_admin.post("/admin/clips/clip/add/", {"name": "thanks", "words": "Thank you.",
                                                            "tag_list": ["closing"], "interruptible": "on",
                                                            "upload": upload}, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        clip = Clip.objects.get()
        assert (clip.name, clip.tags, clip.duration_ms) == ("thanks", ["closing"], 1000)
    page = client_admin.get(f"/admin/clips/clip/{clip.pk}/change/", **HOST).content.decode()
    assert f'src="/clips/{clip.pk}/audio/"' in page
    bad = io.BytesIO(b"garbage")
    bad.name = "bad.wav"
    refused = client_admin.post("/admin/clips/clip/add/", {"name": "bad", "words": "Bad.", "upload": bad}, **HOST)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "upload": ["bad.wav is not audio we can read: upload a WAV or MP3 file."]}
    response = client_admin.post(f"/admin/clips/clip/{clip.pk}/delete/", {"post": "yes"}, **HOST)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert Clip.objects.count() == 0
