"""Portal number list: a client's users see their own numbers only."""


def test_numbers_list_shows_only_this_clients_numbers(client, acme_number, globex_number, acme_viewer):
    client.force_login(acme_viewer)
    response = client.get("/numbers/", HTTP_HOST="acme.localhost")
    assert response.status_code == 200
    page = response.content.decode()
    assert "+15550001000" in page and "Reception" in page
    assert "+15550002000" not in page
    assert client.get("/numbers/", HTTP_HOST="globex.localhost").status_code == 403
