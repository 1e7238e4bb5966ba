"""Portal number list: a client's users see their own numbers only."""


def test_numbers_list_shows_only_this_clients_numbers(client, acme_number, globex_number, acme_viewer):
    client.force_login(acme_viewer)
    response = client.get("/numbers/", HTTP_HOST="acme.localhost")
    assert response.status_code == 200
    page = response.content.decode()
    assert "+15550001000" in page and "Reception" in page
    assert "+15550002000" not in page
    assert client.get("/numbers/", HTTP_HOST="globex.localhost").status_code == 403


def test_a_client_admin_chooses_the_agent_of_a_number(client, tenant_a, acme_number, acme_admin, acme_viewer,
                                                      settings):
    from django_tenants.utils import tenant_context

    from apps.telephony.models import PhoneNumber
    from apps.telephony.tests.conftest import make_agent

    with tenant_context(tenant_a):
        night = make_agent("Night desk")
    host = {"HTTP_HOST": "acme.localhost"}
    url = f"/numbers/{acme_number.pk}/agent/"
    client.force_login(acme_viewer)
    assert client.post(url, {"agent": night.pk}, **host).status_code == 403
    client.force_login(acme_admin)
    assert 'aria-label="Agent answering +15550001000"' in client.get("/numbers/", **host).content.decode()
    assert client.post(url, {"agent": night.pk}, **host).status_code == 302
    with tenant_context(tenant_a):
        assert PhoneNumber.objects.get(pk=acme_number.pk).agent_id == night.pk
    for bad in ("999999", "abc"):
        response = client.post(url, {"agent": bad}, follow=True, **host)
        assert "No such agent." in response.content.decode()
    assert client.post("/numbers/999999/agent/", {"agent": night.pk}, **host).status_code == 404
    settings.PORTAL_CLIENTS_ASSIGN_NUMBERS = False
    response = client.post(url, {"agent": ""}, follow=True, **host)
    assert "Your agency assigns agents to numbers" in response.content.decode()
    assert "Agent answering" not in client.get("/numbers/", **host).content.decode()
    with tenant_context(tenant_a):
        assert PhoneNumber.objects.get(pk=acme_number.pk).agent_id == night.pk
