"""Portal call pages: a client's users see only their own calls and recordings."""
from django_tenants.utils import tenant_context

from apps.calls.services import call_recording_save


def test_call_list_and_detail(client, tenant_a, acme_call, acme_viewer):
    client.force_login(acme_viewer)
    response = client.get("/calls/", HTTP_HOST="acme.localhost")
    assert response.status_code == 200
    assert f"/calls/{acme_call.pk}/" in response.content.decode()
    response = client.get(f"/calls/{acme_call.pk}/", HTTP_HOST="acme.localhost")
    assert response.status_code == 200
    assert "+15557654321" in response.content.decode()


def test_list_filters(client, tenant_a, acme_call, acme_viewer):
    client.force_login(acme_viewer)
    response = client.get("/calls/?direction=outbound", HTTP_HOST="acme.localhost")
    assert f"/calls/{acme_call.pk}/" not in response.content.decode()
    response = client.get("/calls/?direction=inbound&number=7654321", HTTP_HOST="acme.localhost")
    assert f"/calls/{acme_call.pk}/" in response.content.decode()


def test_recording_streams_through_the_checked_view(client, tenant_a, acme_call, acme_viewer):
    with tenant_context(tenant_a):
        call = call_recording_save(call_id=acme_call.pk, wav_bytes=b"RIFF-acme", transcript="hi")
    try:
        client.force_login(acme_viewer)
        response = client.get(f"/calls/{acme_call.pk}/recording.wav", HTTP_HOST="acme.localhost")
        assert response.status_code == 200
        assert response["Content-Type"] == "audio/wav"
        assert b"".join(response.streaming_content) == b"RIFF-acme"
        client.logout()
        response = client.get(f"/calls/{acme_call.pk}/recording.wav", HTTP_HOST="acme.localhost")
        assert response.status_code == 302
    finally:
        call.recording.delete(save=False)
        call.transcript.delete(save=False)


def test_acme_user_cannot_reach_globex_calls(client, tenant_b, acme_call, globex_call, acme_viewer):
    with tenant_context(tenant_b):
        call = call_recording_save(call_id=globex_call.pk, wav_bytes=b"RIFF-globex", transcript="secret")
    try:
        client.force_login(acme_viewer)
        # globex's call id tampered into acme's host: not in acme's schema
        for suffix in ("", "recording.wav", "transcript.txt"):
            assert client.get(f"/calls/{globex_call.pk}/{suffix}", HTTP_HOST="acme.localhost").status_code == 404
        # acme's user on globex's host: refused before any lookup
        for suffix in ("", "recording.wav", "transcript.txt"):
            assert client.get(f"/calls/{globex_call.pk}/{suffix}", HTTP_HOST="globex.localhost").status_code == 403
        assert client.get("/calls/", HTTP_HOST="globex.localhost").status_code == 403
    finally:
        call.recording.delete(save=False)
        call.transcript.delete(save=False)
