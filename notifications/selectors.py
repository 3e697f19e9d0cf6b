from django.db.models import QuerySet

from .models import NotificationMessage, Suppression


def notification_message_list(*, search: str | None = None) -> QuerySet[NotificationMessage]:
    """Stored messages, newest first; `search` matches the description."""
    messages = NotificationMessage.objects.order_by("-timestamp", "-id")
    if search:
        messages = messages.filter(description__icontains=search)
    return messages


def suppression_list(*, search: str | None = None, reason: str | None = None) -> QuerySet[Suppression]:
    """Suppressed addresses, newest first; `search` matches the address, `reason` filters."""
    rows = Suppression.objects.order_by("-created_at", "-id")
    if search:
        rows = rows.filter(address__icontains=search)
    if reason:
        rows = rows.filter(reason=reason)
    return rows
