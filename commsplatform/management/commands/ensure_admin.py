"""`manage.py ensure_admin`: the superuser and API token that `make run` prints."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from commsplatform.roles import roles_ensure
from commsplatform.services import admin_ensure


def _password_from_file(path: Path) -> str:
    # Generated once and kept, so the login printed by `make run` stays the same.
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    return password


class Command(BaseCommand):
    help = (
        "Create or repair the admin superuser and its DRF token, and print the login; "
        "also create the role groups (setup_roles). "
        "Password: $ADMIN_PASSWORD, else the one generated once into var/admin-password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))
        parser.add_argument(
            "--password-file",
            type=Path,
            default=Path(settings.BASE_DIR) / "var" / "admin-password",
            help="where the generated password is kept (default: var/admin-password)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object instead")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("ADMIN_PASSWORD") or _password_from_file(options["password_file"])
        roles_ensure()
        user, token = admin_ensure(username=options["username"], password=password)
        if options["json"]:
            self.stdout.write(json.dumps({"username": user.get_username(), "password": password, "token": token}))
            return
        self.stdout.write(f"username: {user.get_username()}")
        self.stdout.write(f"password: {password}")
        self.stdout.write(f"token:    {token}")
