"""The roles of the platform: Django groups and the permissions each holds.

- viewers: read campaigns, recipients (without their email and mobile), events,
  deliveries, orders, products, accounts and battery telemetry.
- operators: what viewers do, plus run campaigns (create, send, cancel, retry the failed),
  send the test mail, manage recipients and see their email and mobile, and see, add and
  remove suppressed addresses.
- producers: publish events, place orders, request weather forecasts; nothing else.

A user may be in several groups. Staff and superusers may call every route (the staff-only
ones too: streams, init-data, user generation). `roles_ensure` creates the groups and
adds what is missing; it never takes a permission away, so an administrator's additions
stay. It runs in the data migration commsplatform/migrations/0001_roles.py, in
`manage.py setup_roles` and in `manage.py ensure_admin`.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db import transaction

# Permissions no model's default set holds: app label.codename → (model, description).
# weather and telemetry keep no rows; their permissions hang on a content type of their own.
CUSTOM_PERMISSIONS: dict[str, tuple[str, str]] = {
    "campaigns.send_campaign": ("campaign", "Can send a campaign (send, create-and-send, retry the failed)"),
    "users.view_recipient_pii": ("recipient", "Can see recipients' email and mobile"),
    "notifications.send_test_email": ("delivery", "Can send the test mail"),
    "weather.request_forecast": ("forecast", "Can request a weather forecast"),
    "telemetry.view_battery": ("battery", "Can view battery telemetry"),
}

VIEWERS = (
    "campaigns.view_campaign",
    "users.view_recipient",
    "notifications.view_notificationmessage",
    "notifications.view_delivery",
    "orders.view_order",
    "inventory.view_product",
    "accounts.view_account",
    "telemetry.view_battery",
)
OPERATORS = VIEWERS + (
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "campaigns.send_campaign",
    "users.add_recipient",
    "users.change_recipient",
    "users.view_recipient_pii",
    "notifications.send_test_email",
    "notifications.view_suppression",
    "notifications.add_suppression",
    "notifications.delete_suppression",
)
PRODUCERS = (
    "notifications.add_notificationmessage",
    "orders.add_order",
    "weather.request_forecast",
)
ROLES: dict[str, tuple[str, ...]] = {"viewers": VIEWERS, "operators": OPERATORS, "producers": PRODUCERS}

_DEFAULT_ACTIONS = ("add", "change", "delete", "view")


def _permission(apps: Any, perm: str) -> Any | None:
    """The Permission row for "app.codename", created (with its content type) when missing;
    None for a model the (historical) registry does not have yet: a later migration that
    creates it runs `roles_ensure` again (commsplatform/migrations/0002_roles_suppression.py)."""
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    app_label, codename = perm.split(".", 1)
    if perm in CUSTOM_PERMISSIONS:
        model_name, name = CUSTOM_PERMISSIONS[perm]
    else:
        action, model_name = codename.split("_", 1)
        if action not in _DEFAULT_ACTIONS:
            raise ValueError(f"{perm}: not a default model permission and not declared")
        try:
            verbose_name = apps.get_model(app_label, model_name)._meta.verbose_name
        except LookupError:
            return None
        name = f"Can {action} {verbose_name}"  # the name Django's post_migrate would give it
    content_type, _ = content_type_model.objects.get_or_create(app_label=app_label, model=model_name)
    permission, _ = permission_model.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": name}
    )
    return permission


@transaction.atomic
def roles_ensure(*, apps: Any = global_apps) -> dict[str, int]:
    """Create the role groups and give each the permissions it lacks; return {group: permissions added}.

    `apps` is the migration's historical registry inside a data migration.
    """
    group_model = apps.get_model("auth", "Group")
    added = {}
    for role, perms in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        have = set(group.permissions.values_list("pk", flat=True))
        found = (_permission(apps, perm) for perm in perms)
        missing = [p for p in found if p is not None and p.pk not in have]
        group.permissions.add(*missing)
        added[role] = len(missing)
    return added
