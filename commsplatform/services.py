"""Project-level writes that belong to no domain app."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def admin_ensure(*, username: str, password: str) -> tuple[AbstractUser, str]:
    """Make `username` an active superuser whose password is `password`; return it and its API token.

    Idempotent: an existing user keeps its token and its row; only the flags and, when it
    no longer matches, the password are brought back to what was asked, so the login
    that `make run` prints always works.
    """
    user_model = get_user_model()
    user, created = user_model.objects.select_for_update().get_or_create(
        **{user_model.USERNAME_FIELD: username},
        defaults={"is_staff": True, "is_superuser": True, "is_active": True},
    )
    changed = created
    for flag in ("is_staff", "is_superuser", "is_active"):
        if not getattr(user, flag):
            setattr(user, flag, True)
            changed = True
    if created or not user.check_password(password):
        user.set_password(password)
        changed = True
    if changed:
        user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key
