"""The role groups exist after `migrate` (data migration), and setup_roles / ensure_admin
make them again idempotently, adding only what is missing."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from commsplatform.roles import ROLES


def _perms(group: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group).permissions.all()}


@pytest.mark.django_db
def test_the_migration_created_every_role_with_its_permissions():
    assert {role: _perms(role) for role in ROLES} == {role: set(perms) for role, perms in ROLES.items()}


@pytest.mark.django_db
def test_setup_roles_is_idempotent_and_keeps_what_an_administrator_added():
    # given: an administrator gave viewers one more permission, and someone deleted producers
    Group.objects.get(name="viewers").permissions.add(Permission.objects.get(codename="view_payment"))
    Group.objects.filter(name="producers").delete()
    # when
    out = StringIO()
    call_command("setup_roles", stdout=out)
    call_command("setup_roles", stdout=out)
    # then: producers are back, viewers keep the addition, and the second run added nothing
    assert _perms("producers") == set(ROLES["producers"])
    assert _perms("viewers") == set(ROLES["viewers"]) | {"accounts.view_payment"}
    assert out.getvalue().splitlines()[-3:] == [
        f"viewers: {len(ROLES['viewers'])} permissions (0 added)",
        f"operators: {len(ROLES['operators'])} permissions (0 added)",
        f"producers: {len(ROLES['producers'])} permissions (0 added)",
    ]
    assert Group.objects.filter(name__in=ROLES).count() == 3


@pytest.mark.django_db(transaction=True)
def test_ensure_admin_makes_the_roles_on_an_emptied_database(tmp_path, monkeypatch):
    # a transactional test starts from a flushed database: no groups
    Group.objects.all().delete()
    monkeypatch.setenv("ADMIN_PASSWORD", "pw-admin-123")
    call_command("ensure_admin", "--json", stdout=StringIO())
    assert set(Group.objects.values_list("name", flat=True)) == set(ROLES)


@pytest.mark.django_db
def test_a_change_of_role_applies_to_the_next_request_although_the_token_is_cached(django_user_model):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = django_user_model.objects.create_user(username="vera", password="x")
    user.groups.add(Group.objects.get(name="viewers"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/v1/campaigns/").status_code == 200  # the token (and its user) now cached
    assert client.post("/api/v1/users/", {"username": "ada"}, format="json").status_code == 403
    # when: she becomes an operator
    user.groups.add(Group.objects.get(name="operators"))
    # then: at once
    assert client.post("/api/v1/users/", {"username": "ada"}, format="json").status_code == 201
    # and when she is no longer one, at once again
    user.groups.remove(Group.objects.get(name="operators"))
    assert client.post("/api/v1/users/", {"username": "bob"}, format="json").status_code == 403
