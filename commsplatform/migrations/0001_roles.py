"""The role groups (viewers, operators, producers) and their permissions; see commsplatform/roles.py."""

from django.db import migrations

from commsplatform.roles import roles_ensure


def create_roles(apps, schema_editor):
    roles_ensure(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("campaigns", "0001_initial"),
        ("inventory", "0001_initial"),
        ("notifications", "0002_delivery"),
        ("orders", "0001_initial"),
        ("users", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
