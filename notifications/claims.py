"""Fenced claims on delivery rows: a sender holds a row only under its own `claim_token`.

`claim` moves rows `pending` (or `sending` past the lease: their sender died) to
`sending` with attempts + 1 and a fresh token, under SKIP LOCKED; a campaign's rows are
claimed only while the campaign is sending. Every later UPDATE of that sender matches
`Claim.held()`, so a sender whose lease ran out and whose rows were re-claimed changes
nothing.

Consent is checked again here, right before sending: a claimed row whose address is
suppressed now (notifications.suppression.suppression_skip_reason: any entry for
campaign mail; hard bounce, complaint or manual for transactional mail), or a campaign
row whose recipient opted out, is handed to the sender in `Claim.skip` with the router's
reason; the sender sends it nothing and records it `skipped` with the chunk's other
outcomes, counted as the router counts it (skipped; unsubscribed too for an
unsubscribe). The router skipped such rows when it wrote them; this catches what changed
since: an unsubscribe after a 4xx failure followed by "retry failed", a complaint while
the mail waited in the stream. (Recording them with the outcomes, fenced by the claim,
keeps the claim from touching the campaign row: a cancel locks that row before the
pending deliveries, the claim the other way round.)
"""

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from users.models import Recipient

from .campaign_hooks import campaign_hooks
from .models import Delivery, Suppression
from .suppression import suppression_skip_reason


@dataclass
class Claim:
    """The rows one `deliveries_claim` took, under one token; `renewed_at` is the monotonic time the
    lease was last started or renewed (taken before the UPDATE, so it errs early)."""

    token: uuid.UUID
    rows: list[Mapping[str, Any]]
    renewed_at: float
    skip: dict[int, str] = field(default_factory=dict)  # row → why it must not be sent (consent)

    @property
    def pks(self) -> list[int]:
        return [row["pk"] for row in self.rows]

    def held(self) -> QuerySet[Delivery]:
        """This claim's rows that are still its own: the fence of every later UPDATE."""
        return Delivery.objects.filter(status=Delivery.Status.SENDING, claim_token=self.token)


def deliveries_claim(ids: list[int]) -> Claim | None:
    started = time.monotonic()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.EMAIL_SENDING_LEASE_S)
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids)
            .filter(Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.SENDING, claimed_at__lt=stale))
            .annotate(suppressed_for=Subquery(_suppression_reason), opted_out=Subquery(_opted_out))
            .values_list("pk", "campaign_id", "suppressed_for", "opted_out")
        )
        # Rows of a campaign that stopped sending (cancelled) are left where they are.
        sending = campaign_hooks().campaign_ids_sending(campaign_ids={c[1] for c in candidates if c[1] is not None})
        claimed: list[int] = []
        skip: dict[int, str] = {}
        for pk, cid, suppressed_for, opted_out in candidates:
            if cid is not None and cid not in sending:
                continue
            claimed.append(pk)
            why = suppression_skip_reason(reason=suppressed_for, campaign=cid is not None)
            if why is None and cid is not None and opted_out:
                why = "recipient opted out"
            if why is not None:
                skip[pk] = why
        if not claimed:
            return None
        Delivery.objects.filter(pk__in=claimed).update(
            status=Delivery.Status.SENDING, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
        )
    rows: list[Mapping[str, Any]] = list(
        Delivery.objects.filter(pk__in=claimed, claim_token=token)
        .order_by("pk")
        .values(
            "pk",
            "campaign_id",
            "address",
            "subject",
            "body",
            "from_email",
            "message_id",
            "attempts",
            "recipient_id",
            "recipient__username",
            "recipient__name",
            "recipient__last_name",
            "recipient__email",
            "recipient__mobile",
            "recipient__device_id",
        )
    )
    return Claim(token, rows, started, skip) if rows else None


# Per candidate row, one probe of an index each (a join could let the planner scan all
# recipients): the suppression reason of its address (the list is unique on
# lower(address)) and whether its recipient opted out.
_suppression_reason = (
    Suppression.objects.annotate(lowered=Lower("address"))
    .filter(lowered=Lower(OuterRef("address")))
    .order_by()
    .values("reason")[:1]
)
_opted_out = Recipient.objects.filter(pk=OuterRef("recipient_id")).order_by().values("opted_out")[:1]


def claim_renew(claim: Claim) -> bool:
    """Extend the lease of every row of the claim (sent or not: an unrecorded outcome is
    held too); False when any of them is no longer this claim's (its lease ran out and the
    row was re-queued or re-claimed)."""
    started = time.monotonic()
    renewed = claim.held().filter(pk__in=claim.pks).update(claimed_at=timezone.now())
    claim.renewed_at = started
    return renewed == len(claim.rows)
