"""The tenant-aware beat scheduler loads every schema's entries into one schedule
and refuses duplicate names across schemas, so each client's entry carries its
schema name."""
from django.db import migrations

OLD_NAME = "telephony: phone numbers of the month"


def rename(apps, schema_editor):
    schema = getattr(schema_editor.connection, "schema_name", "public")
    if schema == "public":
        return
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=OLD_NAME).update(name=f"{OLD_NAME} [{schema}]")


def unrename(apps, schema_editor):
    schema = getattr(schema_editor.connection, "schema_name", "public")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=f"{OLD_NAME} [{schema}]").update(name=OLD_NAME)


class Migration(migrations.Migration):
    dependencies = [("telephony", "0002_phone_number_months_beat")]
    operations = [migrations.RunPython(rename, unrename)]
