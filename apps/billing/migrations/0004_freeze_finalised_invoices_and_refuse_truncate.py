"""Tighter database guards (replacing the invoice and line triggers of 0002):

* A non-draft invoice is frozen as a whole row: only the columns its status
  transitions need may change, each only by its own transition --
    finalised -> sent            status, sent_at
    finalised | sent -> paid     status, paid_at
    finalised | sent -> void     status, voided_at, reason
    finalised | sent (no move)   payment_failed_at (a failed Stripe payment)
    any non-draft                pdf, usage_csv (documents are re-rendered from the frozen rows),
                                 stripe_invoice_id and stripe_hosted_url (each set once, by the push),
                                 updated_at
  Every other column (period, dates, due date, amounts, number, snapshot, and
  any column added later) is frozen: the comparison masks the list above out of
  the whole row, so a new column is frozen by default.
* Invoice lines: no INSERT / UPDATE / DELETE once their invoice (old or new
  parent, so a line cannot be moved out of a frozen invoice either) is not a draft.
* TRUNCATE of the ledger, invoices and invoice lines is refused by
  statement-level BEFORE TRUNCATE triggers (row triggers never see TRUNCATE).
  The only way past them without ALTER TABLE is the session/transaction setting
  `switchboard.allow_billing_truncate = 'on'`, which nothing in the application
  sets; test teardown and the benchmark set it explicitly (SET LOCAL, inside
  their own transaction) through `apps.billing.testing.truncate_billing_tables`.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
DECLARE
    -- The only columns a non-draft invoice may still change (each further limited below).
    transition_columns text[] := ARRAY[
        'status', 'sent_at', 'paid_at', 'voided_at', 'reason', 'payment_failed_at',
        'pdf', 'usage_csv', 'stripe_invoice_id', 'stripe_hosted_url', 'updated_at'
    ];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - transition_columns) IS DISTINCT FROM (to_jsonb(OLD) - transition_columns) THEN
        RAISE EXCEPTION 'invoice % is % and immutable: issue a credit note instead', OLD.number, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'finalised' AND NEW.status IN ('sent', 'paid', 'void'))
        OR (OLD.status = 'sent' AND NEW.status IN ('paid', 'void'))
    ) THEN
        RAISE EXCEPTION 'invoice % cannot go from % to %', OLD.number, OLD.status, NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.sent_at IS DISTINCT FROM OLD.sent_at AND NOT (OLD.status = 'finalised' AND NEW.status = 'sent') THEN
        RAISE EXCEPTION 'invoice %: sent_at changes only when it is sent', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.paid_at IS DISTINCT FROM OLD.paid_at AND NOT (OLD.status <> 'paid' AND NEW.status = 'paid') THEN
        RAISE EXCEPTION 'invoice %: paid_at changes only when it is paid', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.voided_at IS DISTINCT FROM OLD.voided_at OR NEW.reason IS DISTINCT FROM OLD.reason)
        AND NOT (OLD.status <> 'void' AND NEW.status = 'void') THEN
        RAISE EXCEPTION 'invoice %: voided_at and reason change only when it is voided', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.payment_failed_at IS DISTINCT FROM OLD.payment_failed_at
        AND NOT (OLD.status IN ('finalised', 'sent') AND NEW.status = OLD.status) THEN
        RAISE EXCEPTION 'invoice %: payment_failed_at changes only while it awaits payment', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.stripe_invoice_id IS DISTINCT FROM OLD.stripe_invoice_id AND OLD.stripe_invoice_id IS NOT NULL THEN
        RAISE EXCEPTION 'invoice %: the Stripe invoice id is set once', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.stripe_hosted_url IS DISTINCT FROM OLD.stripe_hosted_url AND OLD.stripe_hosted_url <> '' THEN
        RAISE EXCEPTION 'invoice %: the Stripe hosted URL is set once', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
DECLARE
    frozen_status text;
BEGIN
    -- Both parents count: a line may not be moved out of (or into) a frozen invoice.
    SELECT status INTO frozen_status FROM billing_invoice
        WHERE status <> 'draft' AND id IN (
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.invoice_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.invoice_id END
        )
        LIMIT 1;
    IF frozen_status IS NOT NULL THEN
        RAISE EXCEPTION 'lines of a % invoice are immutable (%)', frozen_status, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('switchboard.allow_billing_truncate', true) = 'on' THEN
        RETURN NULL;  -- test teardown / benchmark, set explicitly for its own transaction
    END IF;
    RAISE EXCEPTION '% is billing history and cannot be truncated', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_usage_no_truncate BEFORE TRUNCATE ON billing_usageevent
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_truncate();
CREATE TRIGGER billing_invoice_no_truncate BEFORE TRUNCATE ON billing_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_truncate();
CREATE TRIGGER billing_invoiceline_no_truncate BEFORE TRUNCATE ON billing_invoiceline
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_truncate();
"""

# Back to the 0002 functions (the triggers of 0002 stay; only their bodies change).
REVERSE = """
DROP TRIGGER IF EXISTS billing_usage_no_truncate ON billing_usageevent;
DROP TRIGGER IF EXISTS billing_invoice_no_truncate ON billing_invoice;
DROP TRIGGER IF EXISTS billing_invoiceline_no_truncate ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_refuse_truncate();

CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is % and cannot be deleted', OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.number IS DISTINCT FROM OLD.number OR NEW.client_id <> OLD.client_id
        OR NEW.kind <> OLD.kind OR NEW.period_start <> OLD.period_start
        OR NEW.currency <> OLD.currency OR NEW.subtotal <> OLD.subtotal OR NEW.tax <> OLD.tax
        OR NEW.tax_rate_percent <> OLD.tax_rate_percent OR NEW.total <> OLD.total
        OR NEW.provider_cost <> OLD.provider_cost OR NEW.status = 'draft'
        OR NEW.billing_snapshot::text <> OLD.billing_snapshot::text
    ) THEN
        RAISE EXCEPTION 'invoice % is % and immutable: issue a credit note instead', OLD.number, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
DECLARE
    parent_status text;
BEGIN
    SELECT status INTO parent_status FROM billing_invoice
        WHERE id = COALESCE(NEW.invoice_id, OLD.invoice_id);
    IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
        RAISE EXCEPTION 'lines of a % invoice are immutable', parent_status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_month_end_beat")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
