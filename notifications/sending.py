"""The email sender's ledger protocol: claim, send, record.

Each `email-sender` runner thread (EMAIL_SENDER_CONCURRENCY of them) keeps its own
SMTP session (notifications.smtp) open across messages and entries; one limit shared
by every sender in Redis (notifications.ratelimit; slots reserved a chunk at a time)
caps messages per second;
notifications.message assembles each message (`delivery_message`, which the campaign
preview and test send use too).

Per entry (a batch of delivery ids), EMAIL_SEND_CHUNK rows at a time:
1. claim (notifications.claims): `pending` (or `sending` past its lease: its sender died) → `sending`,
   attempts + 1, a fresh `claim_token` — a conditional update under SKIP LOCKED, so a
   row is never in two senders' hands. A campaign's rows are claimed only while the
   campaign is sending (asked through notifications.campaign_hooks);
2. send each over SMTP with a deterministic Message-ID. Before a message, once a quarter
   of EMAIL_SENDING_LEASE_S has passed since the claim or the last renewal, the lease of
   the chunk's rows is renewed (`claimed_at`, fenced by the token): a slow server never
   lets the lease run out under a live sender. If the renewal finds a row that is no
   longer the claim's (the sender stalled past the lease and the row was re-queued or
   re-claimed), the sender stops the chunk;
3. record the outcome of the whole chunk in one transaction with the campaign counters
   (fed through notifications.campaign_hooks):
   2xx → `sent`; 5xx, or a message that cannot be built (an address that is not one
   plain address) → `failed`; a row the claim found suppressed or opted out since it was
   routed (notifications.claims) → `skipped`, nothing sent, counted as the router counts it; 4xx → `deferred` with capped exponential backoff (then
   `failed` after EMAIL_MAX_ATTEMPTS); server unreachable → the chunk and the rest of the
   entry are `deferred` without using up an attempt, and the thread pauses. Every UPDATE
   matches `status=sending AND claim_token=<this claim>`, and the counters add only the
   UPDATEs' row counts, so only the current holder of a row records its outcome: a row is
   counted once however many senders touched it.
`deliveries_requeue_due` (the `email-retry` loop) puts due rows back on the stream.

Crash bound: a kill -9 can only lose the outcome of the rows a thread holds in
`sending`, at most EMAIL_SEND_CHUNK per thread; those are sent again after the lease,
so the server receives at most EMAIL_SENDER_CONCURRENCY × EMAIL_SEND_CHUNK duplicates.
A live sender renews its lease, so it causes none; only one that stalls longer than
about 3/4 of the lease (one SMTP exchange that long, a frozen process) loses its rows,
and then at most its chunk's already-sent rows are sent again, still counted once.
"""

import html
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formatdate
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workers.backoff import backoff

from .campaign_hooks import campaign_hooks
from .claims import Claim, claim_renew, deliveries_claim
from .message import InvalidMessage, build_message, sender_address
from .models import Delivery, Suppression
from .ratelimit import rate_limit_wait
from .smtp import SmtpReply, SmtpUnavailable, smtp_client
from .suppression import UNSUBSCRIBED, is_hard_bounce, suppressions_add
from .templating import compile_template
from .unsubscribe import unsubscribe_headers, unsubscribe_url

logger = logging.getLogger(__name__)


def send_test_email() -> SmtpReply:
    """Seed 002's `POST /api/v1/email/send`: one test mail to test@test.com, now."""
    address = settings.DEFAULT_FROM_EMAIL
    message = build_message(
        from_addr=address,
        to_addr="test@test.com",
        subject="Test email",
        body="This is a test email from commsplatform.\n",
        message_id=f"<test-{time.time_ns()}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>",
    )
    rate_limit_wait()
    return smtp_client().send(sender_address(address)[0], "test@test.com", message)


def retry_delay(attempts: int) -> float:
    """Equal-jitter capped exponential backoff after the `attempts`-th 4xx: at least half
    the doubling delay, so a deferred row never comes back at once."""
    return backoff(
        max(0, attempts - 1), base=settings.EMAIL_RETRY_BASE_S, cap=settings.EMAIL_RETRY_CAP_S, jitter="equal"
    )


_outage = threading.local()


def _outage_pause() -> float:
    """How long this thread waits after its `n`-th outage in a row (equal jitter: the
    sender threads do not all knock on a recovering server at the same instant)."""
    failures = getattr(_outage, "failures", 0)
    _outage.failures = failures + 1
    return backoff(
        failures, base=settings.EMAIL_OUTAGE_PAUSE_BASE_S, cap=settings.EMAIL_OUTAGE_PAUSE_CAP_S, jitter="equal"
    )


def _campaign_content(campaign_ids: set[int]) -> dict[int, tuple]:
    if not campaign_ids:
        return {}
    hooks = campaign_hooks()
    templates = hooks.campaign_templates(campaign_ids=campaign_ids)
    html_templates = hooks.campaign_html_templates(campaign_ids=campaign_ids)
    return {
        pk: (
            compile_template(subject),
            compile_template(body),
            from_email,
            compile_template(html_templates[pk]) if pk in html_templates else None,
        )
        for pk, (subject, body, from_email) in templates.items()
    }


def campaign_content(campaign_ids: set[int]) -> dict[int, tuple]:
    """Compiled (subject, body, from, html) per campaign, for `delivery_message`."""
    return _campaign_content(campaign_ids)


# The sender's compiled content per campaign. A campaign's content is frozen once it left
# draft/scheduled (campaigns.states.EDITABLE_STATUSES), and the sender claims rows only of
# sending campaigns, so what is cached here never goes stale; it saves two queries and
# three template compilations per chunk.
_SENDING_CONTENT_MAX = 64
_sending_content: dict[int, tuple] = {}
_sending_content_lock = threading.Lock()


def _sending_campaign_content(campaign_ids: set[int]) -> dict[int, tuple]:
    with _sending_content_lock:
        known = {pk: _sending_content[pk] for pk in campaign_ids if pk in _sending_content}
    missing = campaign_ids - known.keys()
    if missing:
        fetched = _campaign_content(missing)
        with _sending_content_lock:
            if len(_sending_content) + len(fetched) > _SENDING_CONTENT_MAX:
                _sending_content.clear()
            _sending_content.update(fetched)
        known.update(fetched)
    return known


def _reserve_slots(wanted: int) -> int:
    """Reserve up to `wanted` consecutive slots of the shared limit in one GCRA reservation
    (wait for the first); return how many may now be sent back to back. The sender asks
    for the rest of its chunk, so a chunk costs one Redis round trip, not one per message
    (or per 16: ~40 µs of CPU each, client and Redis); a quarter of the burst tolerance
    caps it, so a low rate is still paced in small steps.

    k slots at once are one cell of k emission intervals (`rate / k`) under a tolerance of
    `burst // k - 1` such cells, which is at most the one-slot tolerance less the k - 1
    slots taken: the k messages together never exceed what k single reservations allow.
    Slots left unused (an outage mid-chunk) are simply lost: the platform sends less, never more.
    """
    rate = settings.EMAIL_RATE_LIMIT_PER_S
    if rate <= 0:
        return wanted
    burst = settings.EMAIL_RATE_BURST or max(1, int(rate))
    slots = max(1, min(wanted, burst // 4))
    rate_limit_wait(rate=rate / slots, burst=max(1, burst // slots))
    return slots


def delivery_message(row: Mapping[str, Any], content: dict[int, tuple], date: str) -> tuple[str, bytes]:
    """(envelope sender, message bytes) of one delivery row (the shape `deliveries_claim`
    reads): what the sender sends, and what a campaign preview shows. Raises
    InvalidMessage when it cannot be sent as given."""
    mail = _render(row, content)
    message = build_message(
        from_addr=mail.from_addr,
        to_addr=row["address"],
        subject=mail.subject,
        body=mail.body,
        message_id=row["message_id"],
        date=date,
        html=mail.html,
        extra_headers=mail.headers,
    )
    return sender_address(mail.from_addr)[0], message


def send_one(*, envelope_from: str, to_addr: str, message: bytes) -> SmtpReply:
    """One message outside the ledger (a campaign's test send), under the shared rate limit."""
    rate_limit_wait()
    return smtp_client().send(envelope_from, to_addr, message)


@dataclass(frozen=True)
class _Rendered:
    from_addr: str
    subject: str
    body: str
    html: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def _render(row: Mapping[str, Any], content: dict[int, tuple]) -> _Rendered:
    """One delivery's message; campaign mail carries its recipient's unsubscribe link (in
    the List-Unsubscribe headers and at the end of each part)."""
    if row["campaign_id"] is None:
        return _Rendered(row["from_email"] or settings.DEFAULT_FROM_EMAIL, row["subject"], row["body"])
    subject_t, body_t, from_email, html_t = content[row["campaign_id"]]
    values = {
        "id": row["recipient_id"],
        "username": row["recipient__username"],
        "name": row["recipient__name"],
        "last_name": row["recipient__last_name"],
        "email": row["recipient__email"],
        "mobile": row["recipient__mobile"],
        "device_id": row["recipient__device_id"],
    }
    url = unsubscribe_url(campaign_id=row["campaign_id"], recipient_id=row["recipient_id"])
    body = body_t.render(values).rstrip("\n") + f"\n\n--\nUnsubscribe: {url}\n"
    html_body = None
    if html_t is not None:
        html_body = html_t.render(values, escape=html.escape) + (
            f'\n<p style="font-size:small"><a href="{html.escape(url)}">Unsubscribe</a></p>\n'
        )
    return _Rendered(from_email, subject_t.render(values), body, html_body, unsubscribe_headers(url))


@dataclass
class _ChunkResult:
    sent: list[tuple[int, SmtpReply]]
    failed: list[tuple[int, SmtpReply]]
    deferred: list[tuple[int, int, SmtpReply]]  # pk, attempts, reply
    unsent: list[int]  # not attempted: the server went away, or the claim was lost
    invalid: list[tuple[int, str]] = field(default_factory=list)  # pk, why it cannot be sent
    skipped: list[tuple[int, str]] = field(default_factory=list)  # pk, why it must not be sent (consent)
    outage: str | None = None
    claim_lost: bool = False


def _send_chunk(claim: Claim) -> _ChunkResult:
    rows = claim.rows
    result = _ChunkResult([], [], [], [])
    content = _sending_campaign_content({r["campaign_id"] for r in rows if r["campaign_id"] is not None})
    client = smtp_client()
    date = formatdate(usegmt=True)
    # Renewed long before it can run out: a slow server never makes the retry loop
    # re-queue rows this thread is still sending.
    renew_after = settings.EMAIL_SENDING_LEASE_S / 4
    slots = 0  # of the shared rate limit, reserved and not used yet
    for index, row in enumerate(rows):
        if time.monotonic() - claim.renewed_at >= renew_after and not claim_renew(claim):
            # Stalled past the lease: another sender owns some of these rows now. Stop;
            # what is still ours goes back (unsent), what is not is no longer ours to record.
            result.claim_lost = True
            result.unsent = [r["pk"] for r in rows[index:]]
            break
        if (why := claim.skip.get(row["pk"])) is not None:
            result.skipped.append((row["pk"], why))
            continue
        try:
            envelope_from, message = delivery_message(row, content, date)
        except InvalidMessage as exc:
            result.invalid.append((row["pk"], str(exc)))
            continue
        if not slots:
            slots = _reserve_slots(len(rows) - index)
        slots -= 1
        try:
            reply = client.send(envelope_from, row["address"], message)
        except SmtpUnavailable as exc:
            result.outage = str(exc)
            result.unsent = [r["pk"] for r in rows[index:]]
            break
        if 200 <= reply.code < 300:
            result.sent.append((row["pk"], reply))
        elif 400 <= reply.code < 500:
            result.deferred.append((row["pk"], row["attempts"], reply))
        else:
            result.failed.append((row["pk"], reply))
    return result


@dataclass
class _Recorded:
    sent: int  # rows this call moved to `sent`
    campaigns: set[int]  # campaigns whose counters changed
    lost: int  # outcomes not recorded: the rows were no longer this claim's


def _record(result: _ChunkResult, claim: Claim, pause_s: float) -> _Recorded:
    """Store a chunk's outcome and the campaign counters in one transaction.

    Every UPDATE is fenced by the claim (`status=sending AND claim_token=…`), and the
    counters add only what the UPDATEs changed (their row counts, per campaign), so a
    sender that lost its claim changes neither the ledger nor the counters.
    """
    campaign_of = {r["pk"]: r["campaign_id"] for r in claim.rows}
    held = claim.held()
    now = timezone.now()
    sent_per: dict[int, int] = {}
    failed_per: dict[int, int] = {}
    skipped_per: dict[int, int] = {}
    unsubscribed_per: dict[int, int] = {}
    sent = outcomes = 0
    with transaction.atomic():
        by_skip: dict[tuple[int | None, str], list[int]] = {}
        for pk, why in result.skipped:
            by_skip.setdefault((campaign_of[pk], why), []).append(pk)
        for (cid, why), pks in by_skip.items():
            # Not attempted: the attempt is given back, as the router's skip never took one.
            changed = held.filter(pk__in=pks).update(
                status=Delivery.Status.SKIPPED, reason=why, attempts=F("attempts") - 1, next_attempt_at=None
            )
            outcomes += changed
            if cid is not None and changed:
                skipped_per[cid] = skipped_per.get(cid, 0) + changed
                if why == UNSUBSCRIBED:
                    unsubscribed_per[cid] = unsubscribed_per.get(cid, 0) + changed
        by_reply: dict[tuple[int | None, int, str], list[int]] = {}
        for pk, reply in result.sent:
            by_reply.setdefault((campaign_of[pk], reply.code, reply.text), []).append(pk)
        for (cid, code, text), pks in by_reply.items():
            changed = held.filter(pk__in=pks).update(
                status=Delivery.Status.SENT, sent_at=now, smtp_code=code, smtp_response=text[:1000]
            )
            sent += changed
            if cid is not None and changed:
                sent_per[cid] = sent_per.get(cid, 0) + changed
        _suppress_hard_bounces(result, claim)
        failures: list[tuple[int, int | None, str]] = [(pk, reply.code, reply.text) for pk, reply in result.failed]
        failures += [(pk, None, why) for pk, why in result.invalid]
        for pk, attempts, reply in result.deferred:
            if attempts >= settings.EMAIL_MAX_ATTEMPTS:
                failures.append((pk, reply.code, reply.text))
            else:
                outcomes += held.filter(pk=pk).update(
                    status=Delivery.Status.DEFERRED,
                    smtp_code=reply.code,
                    smtp_response=reply.text[:1000],
                    next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
                )
        by_failure: dict[tuple[int | None, int | None, str], list[int]] = {}
        for pk, failure_code, text in failures:
            by_failure.setdefault((campaign_of[pk], failure_code, text), []).append(pk)
        for (cid, failure_code, text), pks in by_failure.items():
            changed = held.filter(pk__in=pks).update(
                status=Delivery.Status.FAILED, smtp_code=failure_code, smtp_response=text[:1000]
            )
            outcomes += changed
            if cid is not None and changed:
                failed_per[cid] = failed_per.get(cid, 0) + changed
        if result.unsent:
            # Not attempted (an outage, or the claim was lost): give the attempt back.
            why = result.outage or "the sending lease ran out before this was sent"
            outcomes += held.filter(pk__in=result.unsent).update(
                status=Delivery.Status.DEFERRED,
                attempts=F("attempts") - 1,
                smtp_response=why[:1000],
                next_attempt_at=now + timedelta(seconds=pause_s),
            )
        counted = set(sent_per) | set(failed_per) | set(skipped_per)
        for cid in counted:
            campaign_hooks().campaign_deliveries_counted(
                campaign_id=cid,
                sent=sent_per.get(cid, 0),
                failed=failed_per.get(cid, 0),
                skipped=skipped_per.get(cid, 0),
            )
        for cid, unsubscribed in unsubscribed_per.items():
            campaign_hooks().campaign_consent_counted(campaign_id=cid, unsubscribed=unsubscribed)
    expected = (
        len(result.sent)
        + len(result.failed)
        + len(result.invalid)
        + len(result.deferred)
        + len(result.unsent)
        + len(result.skipped)
    )
    return _Recorded(sent=sent, campaigns=counted, lost=expected - sent - outcomes)


def _report_send_errors(result: _ChunkResult, claim: Claim) -> None:
    """Tell each campaign of the chunk its send errors since its last success (4xx and
    5xx replies in send order; an outage counts once), for EMAIL_MAX_SEND_ERRORS."""
    if settings.EMAIL_MAX_SEND_ERRORS <= 0:
        return
    order = {r["pk"]: (i, r["campaign_id"]) for i, r in enumerate(claim.rows)}
    events = sorted(
        [(order[pk][0], True) for pk, _ in result.sent]
        + [(order[pk][0], False) for pk, _ in result.failed]
        + [(order[pk][0], False) for pk, _, _ in result.deferred]
    )
    per: dict[int, tuple[int, bool]] = {}  # campaign → (errors since last success, seen a success)
    for index, ok in events:
        cid = claim.rows[index]["campaign_id"]
        if cid is None:
            continue
        errors, seen_ok = per.get(cid, (0, False))
        per[cid] = (0, True) if ok else (errors + 1, seen_ok)
    if result.outage and result.unsent:
        cid = order[result.unsent[0]][1]
        if cid is not None:
            errors, seen_ok = per.get(cid, (0, False))
            per[cid] = (errors + 1, seen_ok)
    for cid, (errors, seen_ok) in per.items():
        campaign_hooks().campaign_send_outcomes(campaign_id=cid, errors=errors, last_ok=seen_ok)


def _suppress_hard_bounces(result: _ChunkResult, claim: Claim) -> None:
    """A permanent refusal of the address itself (notifications.suppression.is_hard_bounce)
    puts it on the suppression list: the server's word holds whoever records the outcome."""
    address_of = {r["pk"]: r["address"] for r in claim.rows}
    for pk, reply in result.failed:
        if is_hard_bounce(reply.code, reply.text):
            suppressions_add(
                addresses=[address_of[pk]],
                reason=Suppression.Reason.HARD_BOUNCE,
                source="smtp",
                detail=f"{reply.code} {reply.text}",
            )


def deliveries_send(*, delivery_ids: list[int]) -> int:
    """Send the given deliveries (the email-sender handler); return how many were sent."""
    chunk_size = settings.EMAIL_SEND_CHUNK
    sent = 0
    for start in range(0, len(delivery_ids), chunk_size):
        claim = deliveries_claim(delivery_ids[start : start + chunk_size])
        if claim is None:
            continue
        result = _send_chunk(claim)
        pause = _outage_pause() if result.outage else 0.0
        if not result.outage:
            _outage.failures = 0
        recorded = _record(result, claim, pause)
        for cid in recorded.campaigns:
            campaign_hooks().campaign_deliveries_settled(campaign_id=cid)
        _report_send_errors(result, claim)
        sent += recorded.sent
        if recorded.lost or result.claim_lost:
            logger.warning(
                "sending lease of %d deliveries ran out (%.0fs) mid-chunk: another sender owns them; "
                "%d outcomes not recorded",
                len(claim.rows),
                settings.EMAIL_SENDING_LEASE_S,
                recorded.lost,
            )
        if result.outage:
            rest = delivery_ids[start + chunk_size :]
            deferred = Delivery.objects.filter(pk__in=rest, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.DEFERRED, next_attempt_at=timezone.now() + timedelta(seconds=pause)
            )
            logger.warning(
                "mail server unavailable (%s): %d deliveries deferred, pausing %.1fs",
                result.outage,
                len(result.unsent) + deferred,
                pause,
            )
            time.sleep(pause)
            break
    return sent
