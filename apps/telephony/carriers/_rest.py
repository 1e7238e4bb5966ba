"""A carrier REST request, its failure classified the one way (429/5xx/unreachable: retryable)."""
from __future__ import annotations

from collections.abc import Callable

import requests

from apps.core.errors import ProviderError

TIMEOUT_SECS = 10


def rest_request(carrier: str, method: str, url: str, *, ok: set[int],
                 gone: Callable[[requests.Response], bool] = lambda response: False, **kwargs) -> requests.Response:
    """Send one request. A status in `ok`, or a response `gone` recognises (the call
    had already ended), is success; anything else raises ProviderError."""
    try:
        response = requests.request(method, url, timeout=TIMEOUT_SECS, **kwargs)
    except requests.RequestException as exc:
        raise ProviderError(f"{carrier} unreachable: {exc}", retryable=True) from exc
    if response.status_code in ok or gone(response):
        return response
    retryable = response.status_code == 429 or response.status_code >= 500
    raise ProviderError(f"{carrier} refused ({response.status_code}): {response.text[:200]}", retryable=retryable,
                        details={"status": response.status_code})
