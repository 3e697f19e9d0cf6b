from django.db.models import QuerySet

from .models import Recipient


def recipient_list(*, search: str | None = None) -> QuerySet[Recipient]:
    """Recipients in id order; `search` matches username, email or names."""
    recipients = Recipient.objects.order_by("id")
    if search:
        from django.db.models import Q

        recipients = recipients.filter(
            Q(username__icontains=search)
            | Q(email__icontains=search)
            | Q(name__icontains=search)
            | Q(last_name__icontains=search)
        )
    return recipients


def recipient_get(*, recipient_id: int) -> Recipient | None:
    return Recipient.objects.filter(pk=recipient_id).first()


def recipient_count() -> int:
    return Recipient.objects.count()


def recipient_id_chunk(*, after_id: int, size: int) -> list[int]:
    """The next `size` recipient ids above `after_id` (keyset pagination for fan-out)."""
    return list(Recipient.objects.filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True)[:size])
