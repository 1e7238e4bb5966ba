"""A client admin's team page: invite (email with a set-password link), role, remove; viewers and other
clients are refused and nothing changes."""
import re

import pytest

from apps.accounts.models import User

HOST = {"HTTP_HOST": "acme.localhost"}


@pytest.fixture
def invited(client, acme_admin, mailoutbox, celery_eager, django_capture_on_commit_callbacks):
    client.force_login(acme_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/team/", {"email": "New.Person@Acme.test", "role": "client_viewer"}, **HOST)
    assert response.status_code == 302
    return User.objects.get(email="new.person@acme.test")


def test_invite_sends_a_link_that_sets_the_password_once(client, invited, mailoutbox, tenant_a):
    assert (invited.client_id, invited.role, invited.has_usable_password()) == (tenant_a.pk, "client_viewer", False)
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["new.person@acme.test"]
    assert mail.subject == "You are invited to Acme Dental on Switchboard Agency"
    path = re.search(r"http://acme\.localhost:\d+(/team/accept/\S+/)", mail.body).group(1)
    client.logout()
    page = client.get(path, **HOST)
    assert page.status_code == 200 and "Choose a password for new.person@acme.test" in page.content.decode()
    response = client.post(path, {"new_password1": "a-long-new-secret-9", "new_password2": "a-long-new-secret-9"},
                           **HOST)
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.login(username="new.person@acme.test", password="a-long-new-secret-9")
    client.logout()
    # The link worked once: the token depends on the password.
    assert client.get(path, **HOST).status_code == 404
    # Another client's host does not accept it either.
    assert client.get(path, HTTP_HOST="globex.localhost").status_code == 404


def test_invite_refusals_change_nothing(client, acme_admin, acme_viewer, mailoutbox):
    client.force_login(acme_admin)
    before = User.objects.count()
    response = client.post("/team/", {"email": "admin@acme.test", "role": "client_viewer"}, **HOST)
    assert "That email already has an account." in response.content.decode()
    response = client.post("/team/", {"email": "x@acme.test", "role": "agency_owner"}, **HOST)
    assert response.status_code == 200 and "Select a valid choice." in response.content.decode()
    client.force_login(acme_viewer)
    assert client.post("/team/", {"email": "y@acme.test", "role": "client_admin"}, **HOST).status_code == 403
    assert (User.objects.count(), len(mailoutbox)) == (before, 0)


def test_roles_and_removal(client, acme_admin, acme_viewer, tenant_b):
    client.force_login(acme_admin)
    client.post(f"/team/{acme_viewer.pk}/role/", {"role": "client_admin"}, **HOST)
    assert User.objects.get(pk=acme_viewer.pk).role == "client_admin"
    client.post(f"/team/{acme_viewer.pk}/role/", {"role": "agency_owner"}, **HOST)  # refused
    assert User.objects.get(pk=acme_viewer.pk).role == "client_admin"
    client.post(f"/team/{acme_admin.pk}/remove/", **HOST)  # yourself: refused
    assert User.objects.filter(pk=acme_admin.pk).exists()
    globex_admin = User.objects.get(email="admin@globex.test")
    response = client.post(f"/team/{globex_admin.pk}/remove/", **HOST)  # not this client's
    assert response.status_code == 404
    assert User.objects.filter(pk=globex_admin.pk).exists()
    client.post(f"/team/{acme_viewer.pk}/remove/", **HOST)
    assert not User.objects.filter(pk=acme_viewer.pk).exists()
    # Now the only admin: cannot become a viewer.
    response = client.post(f"/team/{acme_admin.pk}/role/", {"role": "client_viewer"}, follow=True, **HOST)
    assert "The last admin cannot become a viewer" in response.content.decode()
    assert User.objects.get(pk=acme_admin.pk).role == "client_admin"


def test_viewer_cannot_manage(client, acme_admin, acme_viewer):
    client.force_login(acme_viewer)
    assert client.get("/team/", **HOST).status_code == 403
    assert client.post(f"/team/{acme_admin.pk}/role/", {"role": "client_viewer"}, **HOST).status_code == 403
    assert client.post(f"/team/{acme_admin.pk}/remove/", **HOST).status_code == 403
    assert User.objects.get(pk=acme_admin.pk).role == "client_admin"


def test_an_invitation_is_not_opened_inside_another_session(client, invited, mailoutbox, acme_admin):
    path = re.search(r"(/team/accept/\S+/)", mailoutbox[0].body).group(1)
    response = client.get(path, **HOST)  # still logged in as the admin who invited
    assert response.status_code == 403
    assert "You are logged in as admin@acme.test" in response.content.decode()
    assert not User.objects.get(pk=invited.pk).has_usable_password()


def test_invites_and_role_changes_are_audited_and_refusals_are_not(client, acme_admin, acme_viewer, tenant_a,
                                                                    mailoutbox):
    from apps.tenancy.models import AuditLogEntry

    client.force_login(acme_admin)
    before = AuditLogEntry.objects.count()
    client.post(f"/team/{acme_viewer.pk}/role/", {"role": "agency_owner"}, **HOST)  # refused: no row
    client.post("/team/", {"email": "admin@acme.test", "role": "client_viewer"}, **HOST)  # taken: no row
    assert AuditLogEntry.objects.count() == before
    client.post(f"/team/{acme_viewer.pk}/role/", {"role": "client_admin"}, **HOST)
    client.post("/team/", {"email": "audited@acme.test", "role": "client_viewer"}, **HOST)
    rows = list(AuditLogEntry.objects.order_by("pk")[before:].values_list(
        "event_type", "actor_id", "client_id", "target_id", "changes"))
    invited = User.objects.get(email="audited@acme.test")
    assert rows == [
        ("user_role_changed", acme_admin.pk, tenant_a.pk, str(acme_viewer.pk),
         {"role": {"before": "client_viewer", "after": "client_admin"}}),
        ("user_created", acme_admin.pk, tenant_a.pk, str(invited.pk),
         {"role": {"before": None, "after": "client_viewer"}, "client_id": {"before": None, "after": tenant_a.pk},
          "is_active": {"before": None, "after": True}}),
    ]
