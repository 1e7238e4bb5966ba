"""The carrier registry: every carrier is one module, `apps/telephony/carriers/<name>.py`,
exposing `CARRIER = Carrier(...)`, and one line in settings.TELEPHONY_CARRIER_MODULES.

Everything else is derived from here: the webhook routes (apps/telephony/urls.py),
the media websocket routes (apps/telephony/routing.py), the choices of
PhoneNumber.carrier, the status vocabulary, the REST actions (hang up, transfer,
dial) and the prices. Callers ask `carrier_get(name)` and never import a carrier.

    CARRIER = Carrier(name="acme", label="Acme Telecom", media=AcmeStreams(),
                      webhooks=(Webhook("voice/", voice_view, "acme_voice"),), ...)
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

from apps.core.errors import ApplicationError


@dataclass(frozen=True)
class Webhook:
    """One webhook route, mounted at /telephony/<carrier>/<path> under URL name `name`."""

    path: str
    view: Callable
    name: str


@dataclass(frozen=True)
class Carrier:
    name: str
    label: str
    # The media-stream protocol object (apps.voice.media_protocol.MediaProtocol).
    media: object
    webhooks: tuple[Webhook, ...] = ()
    # The carrier's call statuses → ours (apps.calls.models.Call.Status values).
    statuses: Mapping[str, str] = field(default_factory=dict)
    # What the carrier charges us (apps.providers.prices reads it).
    prices: Mapping = field(default_factory=dict)
    # REST actions, keyword-only: hang_up(number=, carrier_call_id=), transfer(number=, carrier_call_id=,
    # to_number=), dial(number=, to_number=, stream_url=, call_id=, token=, status_callback=, answer_url=,
    # machine_detection=) -> carrier call id. `status_callback`: this carrier's per-call status webhook
    # (`status_webhook`, also where answering-machine results go); `answer_url`: its outbound answer webhook
    # (`answer_webhook`) for carriers that fetch the call's markup when the callee answers (else "").
    hang_up: Callable | None = None
    transfer: Callable | None = None
    dial: Callable | None = None
    # URL names (under "telephony:") of the per-call webhooks of outbound calls, each taking `call_id`.
    status_webhook: str = ""
    answer_webhook: str = ""
    # Dotted path of the caller double speaking this carrier's media wire format (devtools.doubles).
    caller_double: str = ""


def _modules() -> tuple[str, ...]:
    return tuple(getattr(settings, "TELEPHONY_CARRIER_MODULES", ()))


@lru_cache(maxsize=8)
def _load(modules: tuple[str, ...]) -> dict[str, Carrier]:
    loaded: dict[str, Carrier] = {}
    for dotted in modules:
        carrier = getattr(importlib.import_module(dotted), "CARRIER", None)
        if not isinstance(carrier, Carrier):
            raise ImportError(f"{dotted} has no CARRIER = Carrier(...)")
        if carrier.name in loaded:
            raise ImportError(f"carrier {carrier.name!r} is registered twice ({dotted})")
        loaded[carrier.name] = carrier
    return loaded


def carriers() -> dict[str, Carrier]:
    """The registered carriers by name, in settings order."""
    return _load(_modules())


def carrier_get(name: str) -> Carrier:
    carrier = carriers().get(name)
    if carrier is None:
        raise ApplicationError(f"Unknown carrier {name!r}.", details={"carrier": name})
    return carrier


def carrier_choices() -> list[tuple[str, str]]:
    """PhoneNumber.carrier choices (a callable, so a new carrier needs no migration)."""
    return [(carrier.name, carrier.label) for carrier in carriers().values()]


def status_from_carrier(*, carrier: str, carrier_status: str) -> str | None:
    found = carriers().get(carrier)
    return found.statuses.get((carrier_status or "").lower()) if found else None


class _MediaProtocols(Mapping):
    """{carrier name: media-stream protocol}, read from the registry on every access."""

    def __getitem__(self, name: str):
        return carriers()[name].media

    def __iter__(self) -> Iterator[str]:
        return iter(carriers())

    def __len__(self) -> int:
        return len(carriers())


CARRIERS: Mapping = _MediaProtocols()


def webhook_urlpatterns() -> list:
    from django.urls import path

    return [path(f"{carrier.name}/{hook.path}", hook.view, name=hook.name)
            for carrier in carriers().values() for hook in carrier.webhooks]


def media_urlpatterns(consumer) -> list:
    from django.urls import path

    return [path(f"ws/media/{name}/", consumer.as_asgi(carrier_name=name)) for name in carriers()]
