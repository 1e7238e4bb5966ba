"""Walking a support ticket through its three hops, as two browsers would: one
on the agency host, one on the client host (a browser keeps separate cookies per
host; Django's test client does not, so each host gets its own test client)."""
from __future__ import annotations

from urllib.parse import urlparse


def _local(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.hostname, parsed.path + (f"?{parsed.query}" if parsed.query else "")


def support_ticket_link(agency_browser, client, action: str = "open_portal") -> str:
    """Hop 0: the agency admin's "Open portal/admin as client" link → the client-host URL."""
    kind = "open-portal" if action == "open_portal" else "open-admin"
    response = agency_browser.get(f"/admin/tenancy/client/{client.pk}/{kind}/", HTTP_HOST="localhost")
    assert response.status_code == 302, response.status_code
    return response["Location"]


def support_enter(agency_browser, client_browser, client, action: str = "open_portal"):
    """All hops; returns the client host's last response (302 into the portal or admin)."""
    host, path = _local(support_ticket_link(agency_browser, client, action))
    to_agency = client_browser.get(path, HTTP_HOST=host)
    assert to_agency.status_code == 302, (to_agency.status_code, to_agency.content[:300])
    agency_host, agency_path = _local(to_agency["Location"])
    assert agency_host == "localhost", agency_host
    back = agency_browser.get(agency_path, HTTP_HOST=agency_host)
    assert back.status_code == 302, (back.status_code, back.content[:300])
    host, path = _local(back["Location"])
    return client_browser.get(path, HTTP_HOST=host)
