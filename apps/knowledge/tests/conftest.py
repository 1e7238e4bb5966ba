"""A small knowledge base for tenant acme: documents whose answers each live in exactly one
passage, processed by the real task (eager) with the offline embeddings."""
import pytest
from django_tenants.utils import tenant_context

FAQ = """Acme Bank customer FAQ

Opening an account. Before we can open any account you must complete KYC, our know-your-customer identity check: \
upload a photo ID and a proof of address in the app. Accounts are opened within one business day after KYC is approved.

Branch opening hours. Our branches are open Monday to Friday from 9 am to 5 pm and on Saturday from 10 am to 2 pm. \
All branches are closed on Sundays and public holidays.

Lost or stolen cards. If your card is lost or stolen, freeze it at once in the app under Cards, then call the 24-hour \
card line. A replacement card arrives by post within five working days.

International transfers. Transfers abroad cost a flat fee of 12 dollars and usually arrive within two to three \
business days. Transfers in euros to SEPA countries arrive the next business day.

Overdraft interest. An arranged overdraft costs 19.9 percent APR. There is no fee for staying within your arranged \
limit, and we send a text message before any charge is taken.
"""


@pytest.fixture
def faq_text():
    return FAQ


@pytest.fixture
def kb(tenant_a, celery_eager, django_capture_on_commit_callbacks):
    """acme's knowledge base holding FAQ as faq.txt (indexed)."""
    from apps.knowledge.services import document_upload

    with tenant_context(tenant_a):
        with django_capture_on_commit_callbacks(execute=True):
            outcome = document_upload(name="faq.txt", data=FAQ.encode())
        outcome.document.refresh_from_db()
        return outcome.document
