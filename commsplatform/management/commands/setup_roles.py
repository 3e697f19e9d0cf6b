"""`manage.py setup_roles`: create the role groups and give them their permissions (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from commsplatform.roles import ROLES, roles_ensure


class Command(BaseCommand):
    help = "Create the groups " + ", ".join(ROLES) + " with their permissions; add only what is missing."

    def handle(self, *args: Any, **options: Any) -> None:
        for role, count in roles_ensure().items():
            self.stdout.write(f"{role}: {len(ROLES[role])} permissions ({count} added)")
