"""Adding a carrier = one module + one settings line: a carrier the project does not
ship (tests/extra_carrier.py) gets its webhook routed and signature-checked, its media
websocket routed to the media consumer with its protocol, and a place in
PhoneNumber.carrier's choices, with nothing else changed."""
import importlib
import json
import urllib.parse

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import clear_url_caches, reverse
from django_tenants.utils import tenant_context

from apps.calls.models import Call
from apps.telephony.carriers.registry import CARRIERS, carrier_choices, carriers
from apps.telephony.models import PhoneNumber

from .conftest import assert_redeemable, make_agent
from .extra_carrier import sign

EXTRA = "apps.telephony.tests.extra_carrier"
SHIPPED = ["twilio", "telnyx", "plivo", "vonage"]


def _reload_routes():
    """Routes are read from the registry when the URLconfs are imported: import them again."""
    import apps.telephony.routing
    import apps.telephony.urls
    import config.routing
    import config.urls_tenant

    for module in (apps.telephony.urls, config.urls_tenant, apps.telephony.routing, config.routing):
        importlib.reload(module)
    clear_url_caches()


@pytest.fixture
def extra_carrier(settings):
    shipped = list(settings.TELEPHONY_CARRIER_MODULES)
    settings.TELEPHONY_CARRIER_MODULES = [*shipped, EXTRA]
    _reload_routes()
    yield
    settings.TELEPHONY_CARRIER_MODULES = shipped
    _reload_routes()


def _websocket_app():
    import config.routing
    from config.asgi import websocket_application

    return websocket_application(config.routing.websocket_urlpatterns)


def test_the_shipped_carriers_come_from_the_settings_line():
    assert list(carriers()) == SHIPPED
    assert carrier_choices() == [("twilio", "Twilio"), ("telnyx", "Telnyx"), ("plivo", "Plivo"), ("vonage", "Vonage")]
    assert [reverse(f"telephony:{name}") for name in ("twilio_voice", "telnyx_voice", "telnyx_call_control",
                                                      "plivo_answer", "vonage_answer")] == [
        "/telephony/twilio/voice/", "/telephony/telnyx/voice/", "/telephony/telnyx/call-control/",
        "/telephony/plivo/answer/", "/telephony/vonage/answer/"]
    assert reverse("telephony:twilio_status", args=["6f1c1a4e-0000-4000-8000-000000000001"]) == (
        "/telephony/twilio/status/6f1c1a4e-0000-4000-8000-000000000001/")


def _post_extra(client, params: dict, token: str | None):
    body = urllib.parse.urlencode(params).encode()
    headers = {"HTTP_X_EXTRA_SIGNATURE": sign(body, token)} if token else {}
    return client.post("/telephony/extra/answer/", body, content_type="application/x-www-form-urlencoded",
                       HTTP_HOST="acme.localhost", **headers)


def test_a_registered_module_gets_its_webhook_routed_and_signature_checked(client, tenant_a, extra_carrier):
    assert "extra" in carriers() and ("extra", "Extra Telecom") in PhoneNumber._meta.get_field("carrier").choices
    with tenant_context(tenant_a):
        PhoneNumber.objects.create(number="+15550006000", agent=make_agent(), carrier="extra", auth_token="extra-secret")
    params = {"To": "+15550006000", "From": "+15557654321", "CallId": "extra-1"}

    assert _post_extra(client, params, None).status_code == 403
    assert _post_extra(client, params, "someone-elses-secret").status_code == 403
    with tenant_context(tenant_a):
        assert Call.objects.count() == 0

    response = _post_extra(client, params, "extra-secret")
    assert response.status_code == 200
    with tenant_context(tenant_a):
        call = Call.objects.get()
    answer = json.loads(response.content)
    assert answer == {"action": "stream", "stream": "ws://acme.localhost:8000/ws/media/extra/",
                      "headers": {"call_id": str(call.pk), "token": answer["headers"]["token"]}}
    assert (call.carrier, call.carrier_call_id, call.status) == ("extra", "extra-1", "ringing")
    assert_redeemable(answer["headers"]["token"], tenant_a, call.pk)


def test_without_the_settings_line_the_route_does_not_exist(client, tenant_a):
    assert "extra" not in carriers()
    response = _post_extra(client, {"To": "+15550006000", "From": "+1", "CallId": "x"}, "extra-secret")
    assert response.status_code == 404


async def _first_close(path: str) -> dict:
    communicator = WebsocketCommunicator(_websocket_app(), path, headers=[(b"host", b"acme.localhost")])
    connected, _ = await communicator.connect()
    assert connected  # accepted (by a consumer, or to deliver the close code)
    if path.startswith("/ws/media/"):
        await communicator.send_to(text_data='{"event": "nonsense"}')
    output = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return output


@pytest.mark.django_db
async def test_a_registered_module_gets_its_media_websocket_routed(extra_carrier):
    assert CARRIERS["extra"].name == "extra"
    # Routed to the media consumer speaking the new protocol: an unknown event is its 4400, not the router's 4404.
    assert await _first_close("/ws/media/extra/") == {"type": "websocket.close", "code": 4400}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/ws/media/extra/", "/ws/media/nobody/", "/ws/nothing/", "/"])
async def test_an_unknown_websocket_path_is_closed_with_4404(path):
    communicator = WebsocketCommunicator(_websocket_app(), path, headers=[(b"host", b"acme.localhost")])
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await communicator.disconnect()
