from django.db import migrations


def create_vector_extension(apps, schema_editor):
    # Once, in the public schema: every client schema's search_path includes public.
    if schema_editor.connection.schema_name == "public":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")


class Migration(migrations.Migration):
    dependencies = []
    operations = [migrations.RunPython(create_vector_extension, migrations.RunPython.noop)]
