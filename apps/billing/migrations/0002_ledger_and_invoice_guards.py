"""Database-level guards, so no code path (admin, shell, a buggy service) can
rewrite money history:
* the usage ledger is append-only (UPDATE / DELETE raise; TRUNCATE stays possible
  for test teardown and deliberate maintenance);
* a non-draft invoice keeps its number, client, period, currency and amounts and
  cannot be deleted; its lines cannot be inserted, changed or deleted."""
from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION billing_usage_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_usageevent is append-only: record a correction instead of %', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_usage_append_only BEFORE UPDATE OR DELETE ON billing_usageevent
    FOR EACH ROW EXECUTE FUNCTION billing_usage_append_only();

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

CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable();

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

CREATE TRIGGER billing_invoiceline_immutable BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable();
"""

REVERSE = """
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_immutable();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_immutable();
DROP TRIGGER IF EXISTS billing_usage_append_only ON billing_usageevent;
DROP FUNCTION IF EXISTS billing_usage_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
