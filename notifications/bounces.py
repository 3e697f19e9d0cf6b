"""Bounces and complaints that arrive after a mail was sent: from the bounce webhook
(POST /api/v1/bounces/) and from RFC 3464 delivery status notifications in a Maildir
(`manage.py process_bounces --maildir PATH`).

Either way `bounce_record` suppresses the address (a permanent bounce or a complaint;
a temporary bounce changes nothing) and, when the bounce names one of our deliveries
(its original Message-ID, deterministic: notifications.services.message_id_for; or a
campaign id and the address), moves that delivery `sent` → `bounced` and adds one to its
campaign's bounced counter, in one transaction. Recording the same bounce twice changes
nothing the second time (the move is a conditional update, the suppression is unique).
"""

import email
import email.policy
import logging
import os
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path

from django.db import transaction

from .campaign_hooks import campaign_hooks
from .models import Delivery, Suppression
from .suppression import normalize_address, suppressions_add

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BounceOutcome:
    suppressed: bool  # the address is on the suppression list now (new or not)
    delivery_id: int | None  # the delivery that moved to `bounced` by this call


def _find_delivery(*, address: str, message_id: str | None, campaign_id: int | None) -> Delivery | None:
    rows = Delivery.objects.filter(channel=Delivery.Channel.EMAIL)
    if message_id:
        rows = rows.filter(message_id=message_id.strip())
    elif campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id, address__iexact=address)
    else:
        return None
    return rows.order_by("pk").first()


@transaction.atomic
def bounce_record(
    *,
    kind: str,
    address: str,
    permanent: bool,
    source: str,
    message_id: str | None = None,
    campaign_id: int | None = None,
    diagnostic: str = "",
) -> BounceOutcome:
    """Record one bounce ("bounce") or complaint ("complaint") for `address`."""
    if kind == "bounce" and not permanent:
        return BounceOutcome(suppressed=False, delivery_id=None)
    delivery = _find_delivery(address=address, message_id=message_id, campaign_id=campaign_id)
    if delivery is not None and normalize_address(delivery.address) != normalize_address(address):
        # The report names a Message-ID of ours for another address (a forward): the
        # address we sent to is the one that bounced.
        address = delivery.address
    reason = Suppression.Reason.COMPLAINT if kind == "complaint" else Suppression.Reason.HARD_BOUNCE
    suppressions_add(addresses=[address], reason=reason, source=source, detail=diagnostic)
    bounced_id = None
    if delivery is not None and kind == "bounce":
        moved = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENT).update(
            status=Delivery.Status.BOUNCED, smtp_response=(diagnostic or "bounced")[:1000]
        )
        if moved:
            bounced_id = delivery.pk
            if delivery.campaign_id is not None:
                campaign_hooks().campaign_consent_counted(campaign_id=delivery.campaign_id, bounced=1)
    return BounceOutcome(suppressed=True, delivery_id=bounced_id)


# --- RFC 3464 delivery status notifications ---------------------------------------------
@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str  # "5.1.1"
    diagnostic: str


@dataclass(frozen=True)
class DeliveryReport:
    original_message_id: str | None
    failed: list[FailedRecipient]  # Action: failed with a 5.x.x status (4.x.x are ignored)


def _address_field(value: str | None) -> str:
    """`rfc822; user@example.com` → `user@example.com`."""
    if not value:
        return ""
    kind, _, address = str(value).partition(";")
    return (address if _ else kind).strip().strip("<>")


def _original_message_id(report: Message) -> str | None:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                value = BytesHeaderParser().parsebytes(payload).get("Message-ID")
                return str(value).strip() if value else None
        elif content_type == "message/rfc822":
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(original, Message) and original.get("Message-ID"):
                return str(original["Message-ID"]).strip()
    return None


def dsn_parse(raw: bytes) -> DeliveryReport | None:
    """The failed recipients and original Message-ID of a multipart/report DSN; None when
    the message is not a delivery status notification."""
    report = email.message_from_bytes(raw, policy=email.policy.compat32)
    if report.get_content_type() != "multipart/report" or report.get_param("report-type") != "delivery-status":
        return None
    failed = []
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is per-message, the rest per-recipient
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip()
            if action == "failed" and status.startswith("5."):
                address = _address_field(block.get("Final-Recipient")) or _address_field(
                    block.get("Original-Recipient")
                )
                if address:
                    failed.append(FailedRecipient(address, status, str(block.get("Diagnostic-Code", "")).strip()))
    return DeliveryReport(_original_message_id(report), failed)


@dataclass
class MaildirResult:
    reports: int = 0  # DSNs read
    bounces: int = 0  # deliveries moved to `bounced`
    suppressed: int = 0  # failed recipients put on (or found on) the suppression list
    other: int = 0  # messages that were not DSNs (moved to cur/ unread)


def maildir_process(path: str | os.PathLike) -> MaildirResult:
    """Every message in `path`/new: a DSN is recorded (`bounce_record`) and then moved to
    `path`/cur, flagged seen; anything else is moved to cur/ unflagged, for a person to
    read. Processing and moving are per message, so a crash between the two only makes
    the next run record that DSN again, which changes nothing."""
    root = Path(path)
    new, cur = root / "new", root / "cur"
    if not new.is_dir():
        raise FileNotFoundError(f"{root} is not a Maildir (no new/ folder)")
    cur.mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    result = MaildirResult()
    for entry in sorted(new.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        report = dsn_parse(entry.read_bytes())
        flags = ""
        if report is None:
            result.other += 1
        else:
            result.reports += 1
            flags = "S"
            for recipient in report.failed:
                outcome = bounce_record(
                    kind="bounce",
                    address=recipient.address,
                    permanent=True,
                    source=f"dsn:{entry.name[:150]}",
                    message_id=report.original_message_id,
                    diagnostic=f"{recipient.status} {recipient.diagnostic}".strip(),
                )
                result.suppressed += outcome.suppressed
                result.bounces += outcome.delivery_id is not None
        os.replace(entry, cur / f"{entry.name.split(':', 1)[0]}:2,{flags}")
    return result
