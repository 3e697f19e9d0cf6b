"""The suppression list: addresses mail is no longer sent to.

Hard bounces (a permanent refusal of the address at send time, a DSN, the bounce
webhook), complaints and unsubscribes add an address; operators add and remove them
(admin, API). Addresses are stored lower-cased and unique; adding one that is there
already keeps the first entry (its reason and date are the history worth keeping).

Which mail an entry stops (`suppression_skip_reason`, the one rule):
- campaign mail: every entry;
- transactional mail (`notification_send`: no campaign): a hard bounce, a complaint or an
  operator's entry (sending to an address known to be bad, or to someone who reported us
  as spam, hurts the reputation every other mail depends on), but not an unsubscribe: it
  withdraws consent to marketing, not to an order confirmation.
The router (notifications.services.deliveries_route) skips suppressed addresses when it
writes a campaign's rows, `notification_send` when it writes its row, and the sender's
claim (notifications.claims) once more right before sending, so an address suppressed
after its row was written (an unsubscribe after a 4xx, then "retry failed"; a complaint
while the mail waits in the stream) gets nothing either.
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


# The reasons that stop transactional mail too (see the module docstring).
TRANSACTIONAL_SUPPRESSION_REASONS = frozenset({Reason.HARD_BOUNCE, Reason.COMPLAINT, Reason.MANUAL})


# The reason of a delivery skipped for an unsubscribe (campaigns count these apart).
UNSUBSCRIBED = "unsubscribed"


def suppression_skip_reason(*, reason: str | None, campaign: bool) -> str | None:
    """The `Delivery.reason` of a delivery skipped because its address is suppressed for
    `reason` (None: not suppressed, or not for this kind of mail): `unsubscribed` for an
    unsubscribe (campaigns count it as such), else `suppressed: <reason>`."""
    if reason is None or not (campaign or reason in TRANSACTIONAL_SUPPRESSION_REASONS):
        return None
    return UNSUBSCRIBED if reason == Reason.UNSUBSCRIBE else f"suppressed: {reason}"


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
