"""`manage.py ensure_admin`: the login `make run` prints must exist and keep working."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token


def _ensure_admin(*args: str) -> dict[str, str]:
    out = StringIO()
    call_command("ensure_admin", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_creates_a_superuser_with_a_generated_password_and_a_token(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    password_file = tmp_path / "var" / "admin-password"

    login = _ensure_admin("--password-file", str(password_file))

    user = get_user_model().objects.get(username="admin")
    assert (user.is_superuser, user.is_staff, user.is_active) == (True, True, True)
    assert user.check_password(login["password"])
    assert password_file.read_text().strip() == login["password"]
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert Token.objects.get(user=user).key == login["token"]


@pytest.mark.django_db
def test_is_idempotent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    password_file = tmp_path / "admin-password"

    first = _ensure_admin("--password-file", str(password_file))
    second = _ensure_admin("--password-file", str(password_file))

    assert first == second
    assert get_user_model().objects.count() == 1
    assert Token.objects.count() == 1


@pytest.mark.django_db
def test_repairs_the_password_and_flags_of_an_existing_user(monkeypatch) -> None:
    get_user_model().objects.create_user(username="ops", password="old-password", is_active=False)
    monkeypatch.setenv("ADMIN_PASSWORD", "new-password-1")

    login = _ensure_admin("--username", "ops")

    user = get_user_model().objects.get(username="ops")
    assert login["password"] == "new-password-1"
    assert user.check_password("new-password-1")
    assert (user.is_superuser, user.is_staff, user.is_active) == (True, True, True)


@pytest.mark.django_db(transaction=True)
def test_a_subprocess_sees_the_test_database(worker_process) -> None:
    process = worker_process("ensure_admin", "--username", "robot", "--json", env={"ADMIN_PASSWORD": "pw-robot-1"})

    assert process.wait(timeout=60) == 0, process.output()
    login = json.loads(process.output().strip().splitlines()[-1])
    assert login == {
        "username": "robot",
        "password": "pw-robot-1",
        "token": Token.objects.get(user__username="robot").key,
    }
