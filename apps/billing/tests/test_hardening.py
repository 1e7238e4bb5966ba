"""Hardening: stored secrets never rendered, database guards, refusals of nonsense."""


from apps.billing.models import BillingSettings

STORED_SECRET = "sk_test_stored_0123456789abcdef"
STORED_WEBHOOK = "whsec_stored_abcdef0123456789"


def _settings_form_data(**overrides):
    return {
        "invoice_prefix": "INV-",
        "credit_note_prefix": "CN-",
        "payment_terms_days": "14",
        "invoice_footer": "",
        "cap_alert_emails": "",
        "stripe_enabled": "on",
        "stripe_secret_key": "",
        "stripe_webhook_secret": "",
        **overrides,
    }


def test_admin_never_renders_stored_stripe_secrets_and_blank_keeps_them(client, agency_owner):
    row = BillingSettings.load()
    row.stripe_secret_key, row.stripe_webhook_secret = STORED_SECRET, STORED_WEBHOOK
    row.save()
    client.force_login(agency_owner)
    url = f"/admin/billing/billingsettings/{row.pk}/change/"
    page = client.get(url, HTTP_HOST="localhost")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="stripe_secret_key"' in html
    assert STORED_SECRET not in html and STORED_WEBHOOK not in html

    saved = client.post(url, _settings_form_data(payment_terms_days="30"), HTTP_HOST="localhost")
    assert saved.status_code == 302
    row.refresh_from_db()
    assert (row.payment_terms_days, row.stripe_secret_key, row.stripe_webhook_secret) == (
        30,
        STORED_SECRET,
        STORED_WEBHOOK,
    )
    # A refused form (bad number) does not echo the secret the person typed either.
    refused = client.post(
        url, _settings_form_data(payment_terms_days="-1", stripe_secret_key="sk_test_new_typed"), HTTP_HOST="localhost"
    )
    assert refused.status_code == 200 and "sk_test_new_typed" not in refused.content.decode()
    row.refresh_from_db()
    assert (row.payment_terms_days, row.stripe_secret_key) == (30, STORED_SECRET)

    client.post(url, _settings_form_data(stripe_secret_key="sk_test_new"), HTTP_HOST="localhost")
    row.refresh_from_db()
    assert (row.stripe_secret_key, row.stripe_webhook_secret) == ("sk_test_new", STORED_WEBHOOK)
    client.post(url, _settings_form_data(clear_stripe_webhook_secret="on"), HTTP_HOST="localhost")
    row.refresh_from_db()
    assert (row.stripe_secret_key, row.stripe_webhook_secret) == ("sk_test_new", "")
