"""The same isolation through a real daphne on loopback, and a socket that stays
open longer than the channel layer's blocking read."""
import asyncio
import json

import pytest
import websockets


def _connect(server, host: str):
    # The URL's host is sent as the Host header; the TCP connection goes to daphne on loopback.
    return websockets.connect(f"ws://{host}/ws/echo/", host="127.0.0.1", port=server["port"])


async def _exchange(server, host: str, message: str, idle_seconds: float = 0.0):
    async with _connect(server, host) as socket:
        await asyncio.sleep(idle_seconds)
        await socket.send(message)
        return json.loads(await asyncio.wait_for(socket.recv(), 5))


@pytest.mark.live
async def test_live_socket_on_client_a_cannot_reach_client_b(daphne_server, db):
    a = await _exchange(daphne_server, "acme.localhost", "hello")
    b = await _exchange(daphne_server, "globex.localhost", "hello")
    assert a == {"tenant": "acme", "schema": "acme", "echo": "hello"}
    assert b == {"tenant": "globex", "schema": "globex", "echo": "hello"}


@pytest.mark.live
async def test_live_socket_unknown_host_is_closed_with_4404(daphne_server, db):
    async with _connect(daphne_server, "evil.localhost") as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd.code == 4404


@pytest.mark.live
async def test_live_socket_survives_idle_longer_than_the_channel_layer_read(daphne_server, db):
    reply = await _exchange(daphne_server, "acme.localhost", "still here", idle_seconds=7)
    assert reply == {"tenant": "acme", "schema": "acme", "echo": "still here"}
    assert daphne_server["process"].poll() is None
