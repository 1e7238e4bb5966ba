"""The audit log: one exact row per audited change, written in the change's own
transaction, read-only in the agency admin, and each client sees only its own."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client as HttpClient
from django.test import RequestFactory
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.api.models import ApiKey
from apps.billing.services import credit_note_create, invoice_finalize, invoice_generate, invoice_void, rate_card_create
from apps.core.errors import ApplicationError
from apps.providers.models import ProviderAccount
from apps.providers.services import provider_account_create
from apps.providers_agency.models import AgencyProviderAccount
from apps.telephony.models import PhoneNumber
from apps.telephony.tests.conftest import make_agent
from apps.tenancy.audit import AuditActorMiddleware, audit_log_record
from apps.tenancy.models import AuditLogEntry, Client, SupportAccessLog
from apps.tenancy.services import client_create
from apps.tenancy.tests.support import support_enter
from conftest import PASSWORD


@pytest.fixture(autouse=True)
def _session_rows(db):
    """The session's tenants (acme, globex) were created, with their rows, before any test."""
    AuditLogEntry.objects.all().delete()


def as_json(value):
    return DjangoJSONEncoder().default(value)


def rows():
    """Every audit row, oldest first, as comparable tuples."""
    return [
        (row.actor_id, row.client_id, row.client_name, row.event_type, row.target_type, row.target_repr,
         row.changes)
        for row in AuditLogEntry.objects.order_by("id")
    ]


@pytest.fixture
def owner_browser(agency_owner):
    browser = HttpClient()
    browser.force_login(agency_owner)
    return browser


@pytest.fixture
def support_browser(owner_browser, tenant_a):
    """A browser in acme's client admin through a support ticket; the ticket's own row is cleared."""
    browser = HttpClient()
    assert support_enter(owner_browser, browser, tenant_a, "open_admin").status_code == 302
    AuditLogEntry.objects.all().delete()
    return browser


# --- clients ---------------------------------------------------------------------------------------------------


def test_client_created_suspended_resumed_deleted_through_the_agency_admin(owner_browser, agency_owner):
    response = owner_browser.post("/admin/tenancy/client/add/", {
        "name": "Umbrella Vet", "slug": "umbrella", "timezone": "UTC", "currency": "USD", "domain": "",
        "admin_email": "", "admin_password": "",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302
    umbrella = Client.objects.get(slug="umbrella")
    assert rows() == [(agency_owner.pk, umbrella.pk, "Umbrella Vet", "client_created", "tenancy.client", "Umbrella Vet",
                       {"name": {"before": None, "after": "Umbrella Vet"}, "slug": {"before": None, "after": "umbrella"},
                        "domain": {"before": None, "after": "umbrella.localhost"}})]
    AuditLogEntry.objects.all().delete()

    owner_browser.post("/admin/tenancy/client/", {"action": "suspend_clients", "_selected_action": [umbrella.pk]},
                       HTTP_HOST="localhost")
    owner_browser.post("/admin/tenancy/client/", {"action": "suspend_clients", "_selected_action": [umbrella.pk]},
                       HTTP_HOST="localhost")  # already suspended: no second row
    owner_browser.post("/admin/tenancy/client/", {"action": "reactivate_clients", "_selected_action": [umbrella.pk]},
                       HTTP_HOST="localhost")
    assert rows() == [
        (agency_owner.pk, umbrella.pk, "Umbrella Vet", "client_suspended", "tenancy.client", "Umbrella Vet",
         {"status": {"before": "active", "after": "suspended"},
          "suspended_reason": {"before": "", "after": "Suspended by agency staff"}}),
        (agency_owner.pk, umbrella.pk, "Umbrella Vet", "client_resumed", "tenancy.client", "Umbrella Vet",
         {"status": {"before": "suspended", "after": "active"},
          "suspended_reason": {"before": "Suspended by agency staff", "after": ""}}),
    ]
    AuditLogEntry.objects.all().delete()

    assert owner_browser.post(f"/admin/tenancy/client/{umbrella.pk}/delete/", {"post": "yes"},
                              HTTP_HOST="localhost").status_code == 302
    # The client is gone; its row stays, unlinked, with its name.
    assert rows() == [(agency_owner.pk, None, "Umbrella Vet", "client_deleted", "tenancy.client", "Umbrella Vet",
                       {"slug": {"before": "umbrella", "after": None}, "name": {"before": "Umbrella Vet", "after": None}})]


def test_a_status_change_on_the_client_form_is_audited(owner_browser, agency_owner):
    doomed, _, _ = client_create(slug="formco", name="Form Co")
    AuditLogEntry.objects.all().delete()
    data = {"name": "Form Co", "status": "suspended", "suspended_reason": "Unpaid", "timezone": "UTC",
            "currency": "USD", "domains-TOTAL_FORMS": "0", "domains-INITIAL_FORMS": "0"}
    response = owner_browser.post(f"/admin/tenancy/client/{doomed.pk}/change/", data, HTTP_HOST="localhost")
    assert response.status_code == 302, response.content[:3000]
    doomed.refresh_from_db()
    assert (doomed.status, doomed.suspended_reason) == ("suspended", "Unpaid")
    assert rows() == [(agency_owner.pk, doomed.pk, "Form Co", "client_suspended", "tenancy.client", "Form Co",
                       {"status": {"before": "active", "after": "suspended"},
                        "suspended_reason": {"before": "", "after": "Unpaid"}})]


def test_a_refused_creation_leaves_no_row(tenant_a):
    with pytest.raises(ApplicationError):
        client_create(slug="acme", name="Acme again")
    assert rows() == []


# --- support access, users, API keys -------------------------------------------------------------------------


def test_support_access_is_audited_for_the_client(owner_browser, agency_owner, tenant_a):
    assert support_enter(owner_browser, HttpClient(), tenant_a).status_code == 302
    entry = SupportAccessLog.objects.get()
    assert rows() == [(agency_owner.pk, tenant_a.pk, "Acme Dental", "support_portal_opened",
                       "tenancy.supportaccesslog", str(entry), {})]


def test_a_role_change_in_the_agency_admin_is_audited(owner_browser, agency_owner, tenant_a):
    viewer = User(username="viewer@acme.test", email="viewer@acme.test", role="client_viewer", client=tenant_a)
    viewer.set_password(PASSWORD)
    viewer.save()
    response = owner_browser.post(f"/admin/accounts/user/{viewer.pk}/change/", {
        "username": viewer.username, "email": viewer.email, "role": "client_admin", "client": tenant_a.pk,
        "is_active": "on", "first_name": "", "last_name": "", "last_login_0": "", "last_login_1": "",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    }, HTTP_HOST="localhost")
    assert response.status_code == 302, response.content[:3000]
    assert rows() == [(agency_owner.pk, tenant_a.pk, "Acme Dental", "user_role_changed", "accounts.user",
                       "viewer@acme.test", {"role": {"before": "client_viewer", "after": "client_admin"}})]


def test_api_keys_created_and_revoked_in_the_portal_are_audited(client, tenant_a):
    admin = User.objects.get(email="admin@acme.test")
    client.force_login(admin)
    client.post("/api-keys/", {"name": "CRM sync"}, HTTP_HOST="acme.localhost")
    with tenant_context(tenant_a):
        key = ApiKey.objects.get()
    client.post(f"/api-keys/{key.pk}/revoke/", HTTP_HOST="acme.localhost")
    client.post(f"/api-keys/{key.pk}/revoke/", HTTP_HOST="acme.localhost")  # idempotent: no second row
    with tenant_context(tenant_a):
        key.refresh_from_db()
    assert rows() == [
        (admin.pk, tenant_a.pk, "Acme Dental", "api_key_created", "api.apikey", str(key),
         {"name": {"before": None, "after": "CRM sync"}, "prefix": {"before": None, "after": key.prefix}}),
        (admin.pk, tenant_a.pk, "Acme Dental", "api_key_revoked", "api.apikey", str(key),
         {"revoked_at": {"before": None, "after": as_json(key.revoked_at)}}),
    ]


# --- the one-line calls in other apps ----------------------------------------------------------------------------


def test_agent_published_outside_a_request_is_the_systems(tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent(name="Night desk")
    assert rows() == [(None, tenant_a.pk, "Acme Dental", "agent_published", "agents.agent", str(agent),
                       {"version": {"before": None, "after": 1}})]


def test_inside_a_request_the_actor_is_the_requests_user(tenant_a):
    admin = User.objects.get(email="admin@acme.test")
    request = RequestFactory().get("/")
    request.user = admin

    def view(request):
        with tenant_context(tenant_a):
            return make_agent(name="Day desk")

    agent = AuditActorMiddleware(view)(request)
    assert rows() == [(admin.pk, tenant_a.pk, "Acme Dental", "agent_published", "agents.agent", str(agent),
                       {"version": {"before": None, "after": 1}})]


def test_provider_keys_created_and_disabled_through_the_portal(client, tenant_a):
    admin = User.objects.get(email="admin@acme.test")
    client.force_login(admin)
    response = client.post("/providers/add/", {"provider": "deepgram", "label": "main", "api_key": "dg-1234567890",
                                               "max_concurrency": "0"}, HTTP_HOST="acme.localhost")
    assert response.status_code == 302
    with tenant_context(tenant_a):
        account = ProviderAccount.objects.get(label="main")
    client.post(f"/providers/{account.pk}/disable/", HTTP_HOST="acme.localhost")
    assert rows() == [
        (admin.pk, tenant_a.pk, "Acme Dental", "provider_key_created", "providers.provideraccount", str(account),
         {"provider": {"before": None, "after": "deepgram"}, "api_key": {"before": "", "after": "(set)"}}),
        (admin.pk, tenant_a.pk, "Acme Dental", "provider_key_disabled", "providers.provideraccount", str(account),
         {"is_active": {"before": True, "after": False}}),
    ]


def _key_form(**overrides):
    return {"provider": "deepgram", "label": "main", "api_key": "", "base_url": "", "region": "", "secret": "",
            "max_concurrency": "0", "cooldown_until": "", "is_active": "on", **overrides}


def test_provider_key_rotated_in_the_client_admin_never_records_the_key(support_browser, agency_owner, tenant_a):
    with tenant_context(tenant_a):
        account = provider_account_create(provider="deepgram", label="main", api_key="dg-old-secret")
    AuditLogEntry.objects.all().delete()
    url = f"/admin/providers/provideraccount/{account.pk}/change/"
    response = support_browser.post(url, _key_form(api_key="dg-new-secret"), HTTP_HOST="acme.localhost")
    assert response.status_code == 302, response.content[:3000]
    support_browser.post(url, _key_form(), HTTP_HOST="acme.localhost")  # nothing changed: no row
    assert rows() == [(agency_owner.pk, tenant_a.pk, "Acme Dental", "provider_key_rotated",
                       "providers.provideraccount", str(account),
                       {"api_key": {"before": "(changed)", "after": "(changed)"}})]
    assert "dg-new-secret" not in str(AuditLogEntry.objects.get().changes)


def test_agency_provider_key_created_disabled_in_the_agency_admin(owner_browser, agency_owner):
    data = {**_key_form(api_key="agency-secret-1"), "all_clients": "on"}
    assert owner_browser.post("/admin/providers_agency/agencyprovideraccount/add/", data,
                              HTTP_HOST="localhost").status_code == 302
    account = AgencyProviderAccount.objects.get()
    data.pop("is_active")
    assert owner_browser.post(f"/admin/providers_agency/agencyprovideraccount/{account.pk}/change/", data,
                              HTTP_HOST="localhost").status_code == 302
    target = ("providers_agency.agencyprovideraccount", str(account))
    assert rows() == [
        (agency_owner.pk, None, "", "provider_key_created", *target,
         {"provider": {"before": None, "after": "deepgram"}, "label": {"before": None, "after": "main"},
          "api_key": {"before": "", "after": "(changed)"}, "max_concurrency": {"before": None, "after": 0},
          "is_active": {"before": None, "after": True}}),
        (agency_owner.pk, None, "", "provider_key_disabled", *target, {"is_active": {"before": True, "after": False}}),
    ]


def test_phone_number_changed_in_the_client_admin(support_browser, agency_owner, tenant_a):
    with tenant_context(tenant_a):
        agent = make_agent()
        number = PhoneNumber.objects.create(number="+15550001000", agent=agent, carrier="twilio", account_sid="AC1")
    AuditLogEntry.objects.all().delete()
    response = support_browser.post(f"/admin/telephony/phonenumber/{number.pk}/change/", {
        "number": "+15550001999", "label": "", "agent": agent.pk, "carrier": "twilio", "account_sid": "AC1",
        "auth_token": "new-token", "webhook_public_key": "", "is_active": "on",
    }, HTTP_HOST="acme.localhost")
    assert response.status_code == 302, response.content[:3000]
    with tenant_context(tenant_a):
        number.refresh_from_db()
    assert rows() == [(agency_owner.pk, tenant_a.pk, "Acme Dental", "phone_number_changed", "telephony.phonenumber",
                       str(number), {"number": {"before": "+15550001000", "after": "+15550001999"},
                                     "auth_token": {"before": "", "after": "(changed)"}})]


def test_rate_card_and_invoice_lifecycle_rows(tenant_b):
    card = rate_card_create(client=tenant_b, effective_from=date(2025, 1, 1), currency="USD",
                            platform_fee=Decimal("49"))
    invoice = invoice_finalize(invoice_id=invoice_generate(client=tenant_b, period_start=date(2025, 1, 1)).pk)
    invoice_finalize(invoice_id=invoice.pk)  # already final: no second row
    note = credit_note_create(invoice_id=invoice.pk, amount=Decimal("10"), reason="goodwill")
    invoice_void(invoice_id=invoice.pk, reason="wrong address")
    invoice.refresh_from_db()
    note.refresh_from_db()
    globex = (None, tenant_b.pk, "Globex Plumbing")
    assert rows() == [
        (*globex, "rate_card_versioned", "billing.ratecard", str(card),
         {"effective_from": {"before": None, "after": "2025-01-01"}, "copied_from": {"before": None, "after": None}}),
        (*globex, "invoice_finalised", "billing.invoice", str(invoice),
         {"status": {"before": "draft", "after": "finalised"}, "number": {"before": "", "after": invoice.number}}),
        (*globex, "invoice_credited", "billing.invoice", str(invoice),
         {"credit_note": {"before": None, "after": note.pk}, "credited": {"before": None, "after": "10.00"}}),
        (*globex, "invoice_finalised", "billing.invoice", str(note),
         {"status": {"before": "draft", "after": "finalised"}, "number": {"before": "", "after": note.number}}),
        (*globex, "invoice_voided", "billing.invoice", str(invoice),
         {"status": {"before": "finalised", "after": "void"}, "reason": {"before": "", "after": "wrong address"},
          "voided_at": {"before": None, "after": as_json(invoice.voided_at)}}),
    ]


# --- who sees what -------------------------------------------------------------------------------------------------


def test_the_agency_admin_lists_and_filters_but_cannot_edit(owner_browser, tenant_a, tenant_b):
    audit_log_record(actor=None, client=tenant_a, event_type="client_suspended", target=tenant_a)
    audit_log_record(actor=None, client=tenant_b, event_type="client_resumed", target=tenant_b)
    row = AuditLogEntry.objects.get(event_type="client_suspended")
    listing = owner_browser.get("/admin/tenancy/auditlogentry/?event_type__exact=client_resumed", HTTP_HOST="localhost")
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [AuditLogEntry.objects.get(event_type="client_resumed")]
    assert owner_browser.get("/admin/tenancy/auditlogentry/add/", HTTP_HOST="localhost").status_code == 403
    assert owner_browser.get(f"/admin/tenancy/auditlogentry/{row.pk}/change/", HTTP_HOST="localhost").status_code == 200
    assert owner_browser.post(f"/admin/tenancy/auditlogentry/{row.pk}/change/", {"event_type": "client_created"},
                              HTTP_HOST="localhost").status_code == 403
    assert owner_browser.post(f"/admin/tenancy/auditlogentry/{row.pk}/delete/", {"post": "yes"},
                              HTTP_HOST="localhost").status_code == 403
    row.refresh_from_db()
    assert row.event_type == "client_suspended"


def test_the_client_admin_sees_only_its_own_rows_in_the_portal(client, tenant_a, tenant_b, acme_viewer):
    audit_log_record(actor=None, client=tenant_a, event_type="client_suspended", target=tenant_a)
    audit_log_record(actor=None, client=tenant_b, event_type="client_resumed", target=tenant_b)
    audit_log_record(actor=None, client=None, event_type="rate_card_versioned", target=None)
    client.force_login(User.objects.get(email="admin@acme.test"))
    page = client.get("/audit/", HTTP_HOST="acme.localhost")
    assert page.status_code == 200
    assert [row.event_type for row in page.context["page"]] == ["client_suspended"]
    assert b"Client suspended" in page.content and b"Globex" not in page.content
    filtered = client.get("/audit/?event=client_created", HTTP_HOST="acme.localhost")
    assert list(filtered.context["page"]) == []
    client.force_login(acme_viewer)
    assert client.get("/audit/", HTTP_HOST="acme.localhost").status_code == 403


def test_an_undocumented_event_is_refused(db):
    with pytest.raises(ValueError):
        audit_log_record(actor=None, client=None, event_type="made_up", target=None)
    assert rows() == []
