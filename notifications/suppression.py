"""The suppression list: addresses campaign mail is no longer sent to.

Hard bounces (a permanent refusal of the address at send time, a DSN, the bounce
webhook), complaints and unsubscribes add an address; operators add and remove them
(admin, API). Addresses are stored lower-cased and unique; adding one that is there
already keeps the first entry (its reason and date are the history worth keeping).
The router (notifications.services.deliveries_route) skips suppressed addresses.
"""

import re
from collections.abc import Iterable

from django.db.models.functions import Lower

from .models import Suppression

Reason = Suppression.Reason

# RFC 3463 enhanced status codes of a refusal that is about the address itself
# (5.1.x: bad mailbox or domain, 5.2.1: mailbox disabled). Other permanent refusals
# (5.7.x policy, 5.3.4 size, 5.6.x content) are about the message, not the address.
_ADDRESS_STATUS = re.compile(r"^\s*5\.(?:1\.\d{1,3}|2\.1)\b")
_ENHANCED_STATUS = re.compile(r"^\s*[245]\.\d{1,3}\.\d{1,3}\b")
_ADDRESS_CODES = frozenset({550, 551, 553})


def is_hard_bounce(code: int, text: str) -> bool:
    """Whether an SMTP reply refuses the recipient address for good: a 5xx with an enhanced
    status of 5.1.x or 5.2.1, or, without an enhanced status, 550/551/553."""
    if not 500 <= code < 600:
        return False
    if _ENHANCED_STATUS.match(text):
        return bool(_ADDRESS_STATUS.match(text))
    return code in _ADDRESS_CODES


def normalize_address(address: str) -> str:
    return address.strip().lower()


def suppressions_add(*, addresses: Iterable[str], reason: str, source: str, detail: str = "") -> int:
    """Suppress each address (idempotent: one already listed keeps its entry); return how
    many were new. Runs in the caller's transaction."""
    wanted = {normalize_address(a) for a in addresses if a and a.strip()}
    if not wanted:
        return 0
    rows = [Suppression(address=a, reason=reason, source=source[:200], detail=detail[:2000]) for a in sorted(wanted)]
    before = suppressed_addresses(wanted)
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    return len(wanted - set(before))


def suppression_add(*, address: str, reason: str, source: str, detail: str = "") -> tuple[Suppression, bool]:
    """One address (an operator's, or an unsubscribe): (its entry, whether it was new)."""
    created = bool(suppressions_add(addresses=[address], reason=reason, source=source, detail=detail))
    entry = Suppression.objects.annotate(lowered=Lower("address")).get(lowered=normalize_address(address))
    return entry, created


def suppressed_addresses(addresses: Iterable[str | None]) -> dict[str, str]:
    """lower-cased address → suppression reason, for those of `addresses` on the list."""
    lowered = {normalize_address(a) for a in addresses if a}
    if not lowered:
        return {}
    return dict(
        Suppression.objects.annotate(lowered=Lower("address"))
        .filter(lowered__in=lowered)
        .values_list("lowered", "reason")
    )


def suppression_delete(*, suppression_id: int) -> bool:
    """Remove an address from the list (campaigns reach it again); whether it was there."""
    deleted, _ = Suppression.objects.filter(pk=suppression_id).delete()
    return bool(deleted)
