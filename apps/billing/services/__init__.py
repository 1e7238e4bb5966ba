"""Billing writes. Import from here: `from apps.billing.services import usage_record_call`."""

from apps.billing.services.caps import cap_check_after_usage  # noqa: F401,E402
from apps.billing.services.invoices import (  # noqa: F401,E402
    credit_note_create,
    invoice_discard_draft,
    invoice_finalize,
    invoice_generate,
    invoice_generate_and_finalize,
    invoice_mark_paid,
    invoice_mark_payment_failed,
    invoice_mark_sent,
    invoice_render_documents,
    invoice_void,
)
from apps.billing.services.rate_cards import (  # noqa: F401,E402
    metric_rate_set,
    rate_card_assert_editable,
    rate_card_assert_period_open,  # noqa: F401,E402
    rate_card_create,
)
from apps.billing.services.usage import (  # noqa: F401
    CALL_END_REASON_USAGE_CAP,
    UsageEventIn,
    usage_ingest,
    usage_record_call,
    usage_record_phone_numbers,
)
