"""Schedule the campaign dialer's tick (campaigns.tick) every 5 seconds in each client's schema
(the tenant-aware beat scheduler runs it there; it refuses one name in two schemas, so each client's entry
carries its schema name). See apps/campaigns/tasks.py."""
from django.db import migrations

TASK_NAME = "campaigns: dialer tick"


def install(apps, schema_editor):
    schema = getattr(schema_editor.connection, "schema_name", "public")
    if schema == "public":
        return
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_5s, _ = IntervalSchedule.objects.get_or_create(every=5, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=f"{TASK_NAME} [{schema}]", defaults={"task": "campaigns.tick", "interval": every_5s, "crontab": None, "enabled": True}
    )


def remove(apps, schema_editor):
    schema = getattr(schema_editor.connection, "schema_name", "public")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=f"{TASK_NAME} [{schema}]").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, remove)]
