from django.db.models import QuerySet

from .models import NotificationMessage


def notification_message_list(*, search: str | None = None) -> QuerySet[NotificationMessage]:
    """Stored messages, newest first; `search` matches the description."""
    messages = NotificationMessage.objects.order_by("-timestamp", "-id")
    if search:
        messages = messages.filter(description__icontains=search)
    return messages
