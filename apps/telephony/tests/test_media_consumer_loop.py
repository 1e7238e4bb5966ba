"""The media consumer's own message loop (`MediaStreamConsumer.__call__` and `dispatch`) does
for a media stream what Channels' loop does: every message reaches the bridge in order, the
disconnect ends the consumer, and Channels' database clean-up still runs at connect and at
disconnect, but not once per media message (a hop to Channels' one sync thread, 50 a second
per call)."""
import channels.consumer
import channels.generic.websocket
from channels.testing import WebsocketCommunicator

from apps.telephony.consumers import MediaStreamConsumer


class _Bridge:
    stream_id = None

    def __init__(self):
        self.received = []
        self.disconnects = 0

    async def receive(self, data):
        self.received.append(data)

    async def disconnected(self):
        self.disconnects += 1


class _Consumer(MediaStreamConsumer):
    """The real consumer, its bridge swapped for one that only records (no tenant, no call)."""

    bridges: list[_Bridge] = []

    async def connect(self):
        self.bridge = _Bridge()
        self.bridges.append(self.bridge)
        await self.accept()


async def test_every_message_reaches_the_bridge_in_order_without_a_sync_hop_each(monkeypatch):
    hops = []

    async def counted():  # counts Channels' clean-up hops (this test has no database to clean up)
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)  # before each handler
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", counted)  # in the disconnect handler
    communicator = WebsocketCommunicator(_Consumer.as_asgi(carrier_name="twilio"), "/ws/twilio/stream/")
    connected, _ = await communicator.connect()
    assert connected
    for index in range(20):
        await communicator.send_to(text_data=f'{{"event": "media", "n": {index}}}')
    await communicator.send_to(bytes_data=b"\x01\x02")
    await communicator.disconnect()

    bridge = _Consumer.bridges[-1]
    assert bridge.received == [f'{{"event": "media", "n": {index}}}' for index in range(20)] + [b"\x01\x02"]
    assert bridge.disconnects == 1
    assert len(hops) == 3  # websocket.connect, websocket.disconnect (twice); none for the 21 messages
