"""Websockets resolve their tenant from the Host header: a socket on client A's
host runs only in A's schema, unknown hosts and suspended clients are refused."""
import json

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application


async def _connect(host: str, path: str = "/ws/echo/"):
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", host.encode())])
    connected, _ = await communicator.connect()
    return communicator, connected


@pytest.mark.django_db
async def test_socket_on_client_a_host_runs_in_client_a_schema_only():
    results = {}
    for host in ("acme.localhost", "globex.localhost:8000"):
        communicator, connected = await _connect(host)
        assert connected
        await communicator.send_to(text_data="ping")
        results[host] = json.loads(await communicator.receive_from())
        await communicator.disconnect()
    assert results["acme.localhost"] == {"tenant": "acme", "schema": "acme", "echo": "ping"}
    assert results["globex.localhost:8000"] == {"tenant": "globex", "schema": "globex", "echo": "ping"}


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["nobody.localhost", "localhost", ""])
async def test_unknown_or_agency_host_is_refused(host):
    communicator = WebsocketCommunicator(application, "/ws/echo/", headers=[(b"host", host.encode())] if host else [])
    connected, code = await communicator.connect()
    if connected:  # accepted only to deliver the close code
        output = await communicator.receive_output()
        assert output == {"type": "websocket.close", "code": 4404}
    else:
        assert code == 4404
    await communicator.disconnect()


@pytest.fixture
def suspended_globex(committed_db):
    from apps.tenancy.models import Client
    from apps.tenancy.services import client_reactivate, client_suspend

    globex = Client.objects.get(slug="globex")
    client_suspend(client=globex, reason="Invoice overdue")
    yield globex
    client_reactivate(client=globex)


async def test_suspended_client_socket_is_refused(suspended_globex):
    communicator, connected = await _connect("globex.localhost")
    assert connected
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()
