"""Who may call a route: Django model permissions, per HTTP method.

Every API view names what it needs, e.g.
`permission_classes = [HasPerm(GET="campaigns.view_campaign", POST=("campaigns.add_campaign", "campaigns.send_campaign"))]`
or `HasPerm("orders.add_order")` for every method the view answers. The roles that hold
these permissions (operators, producers, viewers) are Django groups, defined in
commsplatform/roles.py. Staff and superusers may call every route; a method the rule does
not name is refused (OPTIONS, which only describes the route, is allowed; HEAD is GET).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

RECIPIENT_PII = "users.view_recipient_pii"


class PermissionRule(BasePermission):
    """Authenticated, and staff or holding every permission named for the request's method."""

    perms_by_method: dict[str, tuple[str, ...]] = {}
    message = "You do not have permission to perform this action."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 when no credentials were given
        if user.is_staff:
            return True
        method = "GET" if request.method == "HEAD" else request.method
        if method == "OPTIONS":
            return True
        required = self.perms_by_method.get(method)
        if required is None:
            return False
        if user.has_perms(required):
            return True
        self.message = f"This needs the permission {' and '.join(required)} (see the roles in the README)."
        return False


def HasPerm(*perms: str, **by_method: str | tuple[str, ...]) -> type[PermissionRule]:
    """A permission class: `HasPerm("app.codename")` for every method, or `HasPerm(GET=..., POST=(...))`."""
    rules: dict[str, tuple[str, ...]] = {}
    if perms:
        rules = {method: perms for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    for method, needed in by_method.items():
        rules[method.upper()] = (needed,) if isinstance(needed, str) else tuple(needed)
    name = "HasPerm_" + "_".join(sorted({p for needed in rules.values() for p in needed})).replace(".", "_")
    return type(name, (PermissionRule,), {"perms_by_method": rules})


def can_view_recipient_pii(user: Any) -> bool:
    """Recipients' email and mobile are shown only to staff and holders of users.view_recipient_pii."""
    return bool(user and user.is_authenticated and (user.is_staff or user.has_perm(RECIPIENT_PII)))
