"""A campaign as one recipient would get it, and a test send of it to any address.

Both go through notifications.sending.delivery_message, the function the sender uses for
every campaign mail, so the preview shows the headers as they would be sent. A test send
is not a delivery: no ledger row, no counter, no campaign state changes.
"""

import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.utils import formatdate

from django.conf import settings

from notifications.message import InvalidMessage
from notifications.sending import campaign_content, delivery_message, send_one
from notifications.services.deliveries import message_id_for
from notifications.smtp import SmtpReply
from users.models import Recipient


class UnknownRecipient(LookupError):
    pass


@dataclass(frozen=True)
class Preview:
    envelope_from: str
    to: str
    subject: str
    body: str
    headers: list[tuple[str, str]]
    raw: bytes


def _row(campaign_id: int, recipient: Recipient | None, *, to: str, message_id: str) -> dict:
    return {
        "pk": None,
        "campaign_id": campaign_id,
        "address": to,
        "message_id": message_id,
        "recipient_id": recipient.pk if recipient else None,
        "recipient__username": recipient.username if recipient else "",
        "recipient__name": recipient.name if recipient else "",
        "recipient__last_name": recipient.last_name if recipient else "",
        "recipient__email": recipient.email if recipient else "",
        "recipient__mobile": recipient.mobile if recipient else "",
        "recipient__device_id": recipient.device_id if recipient else "",
    }


def _build(campaign_id: int, row: dict) -> Preview:
    envelope_from, raw = delivery_message(row, campaign_content({campaign_id}), formatdate(usegmt=True))
    parsed = message_from_bytes(raw, policy=policy.default)
    part = parsed.get_body(preferencelist=("plain",)) or parsed
    return Preview(
        envelope_from=envelope_from,
        to=row["address"],
        subject=str(parsed["Subject"]),
        body=part.get_content(),
        headers=[(name, str(value)) for name, value in parsed.items()],
        raw=raw,
    )


def campaign_preview(*, campaign_id: int, recipient_id: int) -> Preview:
    """The campaign rendered for one recipient, exactly as the sender would build it.
    Raises UnknownRecipient, or InvalidMessage when the recipient's mail could not be sent."""
    recipient = Recipient.objects.filter(pk=recipient_id).first()
    if recipient is None:
        raise UnknownRecipient(f"No recipient with id {recipient_id}.")
    row = _row(
        campaign_id,
        recipient,
        to=recipient.email or "",
        message_id=message_id_for(campaign_id=campaign_id, recipient_id=recipient.pk),
    )
    return _build(campaign_id, row)


def campaign_send_test(*, campaign_id: int, email: str, recipient_id: int | None = None) -> SmtpReply:
    """Send the campaign to `email` now, rendered for `recipient_id` (or with empty fields),
    under the shared rate limit. Raises UnknownRecipient, InvalidMessage (an address that
    is not one plain address) or notifications.smtp.SmtpUnavailable."""
    recipient = None
    if recipient_id is not None:
        recipient = Recipient.objects.filter(pk=recipient_id).first()
        if recipient is None:
            raise UnknownRecipient(f"No recipient with id {recipient_id}.")
    message_id = f"<campaign-{campaign_id}.test-{time.time_ns()}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"
    preview = _build(campaign_id, _row(campaign_id, recipient, to=email, message_id=message_id))
    return send_one(envelope_from=preview.envelope_from, to_addr=email, message=preview.raw)


__all__ = ["InvalidMessage", "Preview", "UnknownRecipient", "campaign_preview", "campaign_send_test"]
