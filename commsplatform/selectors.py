"""Project-level reads that belong to no domain app."""

from __future__ import annotations

from rest_framework.authtoken.models import Token


def staff_token_get() -> str | None:
    """The API token of an active staff user (the admin `make run` creates), oldest first.

    For the traffic tools (`simulate_events`, `loadtest weather`) run against the server
    that shares this database, so they need no token copied by hand.
    """
    token = Token.objects.filter(user__is_staff=True, user__is_active=True).order_by("created").only("key").first()
    return token.key if token else None
