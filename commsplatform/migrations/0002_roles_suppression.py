"""Operators see, add and remove suppressed addresses: the role groups again, now that the
Suppression model exists (roles_ensure only adds what is missing)."""

from django.db import migrations

from commsplatform.roles import roles_ensure


def create_roles(apps, schema_editor):
    roles_ensure(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("commsplatform", "0001_roles"),
        ("notifications", "0004_suppression_delivery_bounced"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
