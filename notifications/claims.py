"""Fenced claims on delivery rows: a sender holds a row only under its own `claim_token`.

`claim` moves rows `pending` (or `sending` past the lease: their sender died) to
`sending` with attempts + 1 and a fresh token, under SKIP LOCKED; a campaign's rows are
claimed only while the campaign is sending. Every later UPDATE of that sender matches
`Claim.held()`, so a sender whose lease ran out and whose rows were re-claimed changes
nothing.
"""

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .campaign_hooks import campaign_hooks
from .models import Delivery


@dataclass
class Claim:
    """The rows one `deliveries_claim` took, under one token; `renewed_at` is the monotonic time the
    lease was last started or renewed (taken before the UPDATE, so it errs early)."""

    token: uuid.UUID
    rows: list[Mapping[str, Any]]
    renewed_at: float

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
            .values_list("pk", "campaign_id")
        )
        # Rows of a campaign that stopped sending (cancelled) are left where they are.
        sending = campaign_hooks().campaign_ids_sending(campaign_ids={cid for _, cid in candidates if cid is not None})
        claimed = [pk for pk, cid in candidates if cid is None or cid in sending]
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
    return Claim(token, rows, started) if rows else None


def claim_renew(claim: Claim) -> bool:
    """Extend the lease of every row of the claim (sent or not: an unrecorded outcome is
    held too); False when any of them is no longer this claim's (its lease ran out and the
    row was re-queued or re-claimed)."""
    started = time.monotonic()
    renewed = claim.held().filter(pk__in=claim.pks).update(claimed_at=timezone.now())
    claim.renewed_at = started
    return renewed == len(claim.rows)
