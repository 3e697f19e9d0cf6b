"""The email sender: persistent SMTP connections, a rate limit, and the ledger protocol.

Each `email-sender` runner thread (EMAIL_SENDER_CONCURRENCY of them) keeps its own
smtplib connection open across messages and entries. A process-wide token bucket
(the `token-bucket` package: thread-safe, no dependencies) caps messages per second.

Per entry (a batch of delivery ids), EMAIL_SEND_CHUNK rows at a time:
1. claim: `pending` (or `sending` past its lease: its sender died) → `sending`,
   attempts + 1, a fresh `claim_token` — a conditional update under SKIP LOCKED, so a
   row is never in two senders' hands;
2. send each over SMTP with a deterministic Message-ID. Before a message, once a quarter
   of EMAIL_SENDING_LEASE_S has passed since the claim or the last renewal, the lease of
   the chunk's rows is renewed (`claimed_at`, fenced by the token): a slow server never
   lets the lease run out under a live sender. If the renewal finds a row that is no
   longer the claim's (the sender stalled past the lease and the row was re-queued or
   re-claimed), the sender stops the chunk;
3. record the outcome of the whole chunk in one transaction with the campaign counters:
   2xx → `sent`; 5xx, or a message that cannot be built (an address that is not one
   plain address) → `failed`; 4xx → `deferred` with capped exponential backoff (then
   `failed` after EMAIL_MAX_ATTEMPTS); server unreachable → the chunk and the rest of the
   entry are `deferred` without using up an attempt, and the thread pauses. Every UPDATE
   matches `status=sending AND claim_token=<this claim>`, and the counters add only the
   UPDATEs' row counts, so only the current holder of a row records its outcome: a row is
   counted once however many senders touched it.
`deliveries_requeue_due` (the `email-retry` loop) puts due rows back on the stream.

Headers: `build_message` cannot emit an injected header. Control characters in the
subject become spaces and a subject that is not short plain ASCII is RFC 2047-encoded;
From/To must each be one valid plain ASCII address (else the delivery fails permanently,
the batch goes on). The API and the admin refuse line breaks in those fields already.

Crash bound: a kill -9 can only lose the outcome of the rows a thread holds in
`sending`, at most EMAIL_SEND_CHUNK per thread; those are sent again after the lease,
so the server receives at most EMAIL_SENDER_CONCURRENCY × EMAIL_SEND_CHUNK duplicates.
A live sender renews its lease, so it causes none; only one that stalls longer than
about 3/4 of the lease (one SMTP exchange that long, a frozen process) loses its rows,
and then at most its chunk's already-sent rows are sent again, still counted once.
"""

import logging
import quopri
import re
import smtplib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.header import Header
from email.utils import formataddr, formatdate, getaddresses
from typing import Any

import token_bucket
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_complete_if_done, campaign_counters_add
from campaigns.templating import compile_template
from commsplatform.validators import CONTROL_CHARACTERS
from workers.backoff import backoff

from .models import Delivery

logger = logging.getLogger(__name__)


class SmtpUnavailable(Exception):
    """The mail server cannot be reached or closed the session (421): an outage."""


@dataclass(frozen=True)
class SmtpReply:
    code: int
    text: str


class SmtpClient:
    """One persistent SMTP session, reconnected when the server drops it."""

    def __init__(self) -> None:
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            conn = smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=settings.EMAIL_TIMEOUT)
            conn.ehlo()
            if settings.EMAIL_USE_TLS:
                conn.starttls()
                conn.ehlo()
            if settings.EMAIL_HOST_USER:
                conn.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpUnavailable(f"cannot connect to {settings.EMAIL_HOST}:{settings.EMAIL_PORT}: {exc}") from exc
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None

    def send(self, from_addr: str, to_addr: str, message: bytes) -> SmtpReply:
        """Send one message; return the server's final reply (2xx, 4xx or 5xx).

        Raises SmtpUnavailable when the server cannot be reached even after one reconnect.
        """
        for attempt in range(2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                return self._transaction(self._conn, from_addr, to_addr, message)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._conn = None
                if attempt:
                    raise SmtpUnavailable(f"mail server dropped the connection: {exc}") from exc
        raise AssertionError("unreachable")

    def _transaction(self, conn: smtplib.SMTP, from_addr: str, to_addr: str, message: bytes) -> SmtpReply:
        text: bytes | str  # SMTPDataError.smtp_error may be either
        code, text = conn.mail(from_addr)
        if code == 250:
            code, text = conn.rcpt(to_addr)
            if code in (250, 251):
                try:
                    code, text = conn.data(message)
                except smtplib.SMTPDataError as exc:
                    code, text = exc.smtp_code, exc.smtp_error
        reply = SmtpReply(code, text.decode(errors="replace") if isinstance(text, bytes) else str(text))
        if code == 421:
            self.close()
            raise SmtpUnavailable(f"mail server closing: {reply.code} {reply.text}")
        if code >= 400:
            conn.rset()
        return reply


_local = threading.local()
_limiter_lock = threading.Lock()
_limiter: tuple[float, token_bucket.Limiter] | None = None


def smtp_client() -> SmtpClient:
    """This thread's persistent client."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = SmtpClient()
    return client


def _rate_limiter() -> token_bucket.Limiter | None:
    global _limiter
    rate = settings.EMAIL_RATE_LIMIT_PER_S
    if rate <= 0:
        return None
    with _limiter_lock:
        if _limiter is None or _limiter[0] != rate:
            burst = settings.EMAIL_RATE_BURST or max(1, int(rate))
            _limiter = (rate, token_bucket.Limiter(rate, burst, token_bucket.MemoryStorage()))
        return _limiter[1]


def rate_limit_wait() -> None:
    """Block until the process-wide token bucket grants one message."""
    limiter = _rate_limiter()
    if limiter is None:
        return
    while not limiter.consume(b"smtp"):
        time.sleep(min(0.05, 1 / settings.EMAIL_RATE_LIMIT_PER_S))


class InvalidMessage(ValueError):
    """A message that cannot be sent as given (an address that is not one plain address,
    a header value with a line break): a permanent failure of that one delivery."""


# The Subject line may be at most 998 characters (RFC 5322 2.1.1); longer ones are encoded
# (and so folded) like non-ASCII ones.
_MAX_RAW_SUBJECT = 998 - len("Subject: ")


# One plain addr-spec: RFC 5322 atext and dots, "@", a domain of letters, digits, hyphens
# and dots. No whitespace, quotes, commas, angle brackets or control characters, so it can
# be neither a list nor a display name nor carry a line break. (Written out because
# Django's validate_email costs ~8 µs an address, 25× the rest of build_message; what
# this lets through that is still malformed, the server refuses with a 5xx.)
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _address(value: str, role: str) -> str:
    """A header/envelope address: exactly one plain ASCII addr-spec (no display name, no
    list), since it is written raw into To/From and into MAIL FROM/RCPT TO."""
    if not _PLAIN_ADDRESS.fullmatch(value):
        raise InvalidMessage(f"{role} address {value!r} is not one plain address")
    return value


def sender_address(value: str) -> tuple[str, str]:
    """(envelope address, From header) of a sender given as `addr` or `Name <addr>`
    (DEFAULT_FROM_EMAIL often carries a display name). The name is quoted or RFC
    2047-encoded by `formataddr`; a name with control characters or an address that is
    not one plain address raises InvalidMessage."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return value, value
    parsed = getaddresses([value]) if not CONTROL_CHARACTERS.search(value) else []
    name, addr = parsed[0] if len(parsed) == 1 else ("", "")
    if not name or not _PLAIN_ADDRESS.fullmatch(addr):
        raise InvalidMessage(f"From address {value!r} is neither one plain address nor 'Name <address>'")
    return addr, formataddr((name, addr), charset="utf-8")


def _subject_header(subject: str) -> str:
    # A line break (or any control character) in a subject, typed by an operator or
    # rendered from a recipient's name, would start a new header: it becomes a space.
    subject = CONTROL_CHARACTERS.sub(" ", subject)
    if subject.isascii() and len(subject) <= _MAX_RAW_SUBJECT:
        return subject
    # RFC 2047 encoded words, folded with CRLF + space (Header's default fold is a bare LF).
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")


def build_message(
    *, from_addr: str, to_addr: str, subject: str, body: str, message_id: str, date: str | None = None
) -> bytes:
    """An RFC 5322 text/plain message, assembled directly (email.message is 10× slower).

    It cannot carry an injected header whatever it is given: the subject has its control
    characters replaced and is RFC 2047-encoded when it is not plain short ASCII; the
    addresses must each be one valid plain address and the Message-ID and Date free of
    control characters, or InvalidMessage is raised.
    """
    from_header = sender_address(from_addr)[1]
    _address(to_addr, "To")
    date = date or formatdate(usegmt=True)
    for name, value in (("Message-ID", message_id), ("Date", date)):
        if not value.isascii() or CONTROL_CHARACTERS.search(value):
            raise InvalidMessage(f"{name} {value!r} contains control or non-ASCII characters")
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if body.isascii():
        encoding, payload = "7bit", body.encode()
    else:
        encoding, payload = "quoted-printable", quopri.encodestring(body.encode(), quotetabs=False)
    head = (
        f"From: {from_header}\r\nTo: {to_addr}\r\nSubject: {_subject_header(subject)}\r\n"
        f"Date: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode() + payload.replace(b"\n", b"\r\n")


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


# --- the ledger protocol ------------------------------------------------------------


@dataclass
class _Claim:
    """The rows one `_claim` took, under one token; `renewed_at` is the monotonic time the
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


def _claim(ids: list[int]) -> _Claim | None:
    started = time.monotonic()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.EMAIL_SENDING_LEASE_S)
    token = uuid.uuid4()
    with transaction.atomic():
        claimed = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids)
            .filter(Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.SENDING, claimed_at__lt=stale))
            .filter(Q(campaign__isnull=True) | Q(campaign__status=Campaign.Status.SENDING))
            .values_list("pk", flat=True)
        )
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
    return _Claim(token, rows, started) if rows else None


def _claim_renew(claim: _Claim) -> bool:
    """Extend the lease of every row of the claim (sent or not: an unrecorded outcome is
    held too); False when any of them is no longer this claim's (its lease ran out and the
    row was re-queued or re-claimed)."""
    started = time.monotonic()
    renewed = claim.held().filter(pk__in=claim.pks).update(claimed_at=timezone.now())
    claim.renewed_at = started
    return renewed == len(claim.rows)


def _campaign_content(campaign_ids: set[int]) -> dict[int, tuple]:
    content = {}
    for pk, subject, body, from_email in Campaign.objects.filter(pk__in=campaign_ids).values_list(
        "pk", "subject", "body", "from_email"
    ):
        content[pk] = (compile_template(subject), compile_template(body), from_email)
    return content


def _render(row: Mapping[str, Any], content: dict[int, tuple]) -> tuple[str, str, str]:
    """(from, subject, body) of one delivery."""
    if row["campaign_id"] is None:
        return row["from_email"] or settings.DEFAULT_FROM_EMAIL, row["subject"], row["body"]
    subject_t, body_t, from_email = content[row["campaign_id"]]
    values = {
        "id": row["recipient_id"],
        "username": row["recipient__username"],
        "name": row["recipient__name"],
        "last_name": row["recipient__last_name"],
        "email": row["recipient__email"],
        "mobile": row["recipient__mobile"],
        "device_id": row["recipient__device_id"],
    }
    return from_email, subject_t.render(values), body_t.render(values)


@dataclass
class _ChunkResult:
    sent: list[tuple[int, SmtpReply]]
    failed: list[tuple[int, SmtpReply]]
    deferred: list[tuple[int, int, SmtpReply]]  # pk, attempts, reply
    unsent: list[int]  # not attempted: the server went away, or the claim was lost
    invalid: list[tuple[int, str]] = field(default_factory=list)  # pk, why it cannot be sent
    outage: str | None = None
    claim_lost: bool = False


def _send_chunk(claim: _Claim) -> _ChunkResult:
    rows = claim.rows
    result = _ChunkResult([], [], [], [])
    content = _campaign_content({r["campaign_id"] for r in rows if r["campaign_id"] is not None})
    client = smtp_client()
    date = formatdate(usegmt=True)
    # Renewed long before it can run out: a slow server never makes the retry loop
    # re-queue rows this thread is still sending.
    renew_after = settings.EMAIL_SENDING_LEASE_S / 4
    for index, row in enumerate(rows):
        if time.monotonic() - claim.renewed_at >= renew_after and not _claim_renew(claim):
            # Stalled past the lease: another sender owns some of these rows now. Stop;
            # what is still ours goes back (unsent), what is not is no longer ours to record.
            result.claim_lost = True
            result.unsent = [r["pk"] for r in rows[index:]]
            break
        from_addr, subject, body = _render(row, content)
        try:
            message = build_message(
                from_addr=from_addr,
                to_addr=row["address"],
                subject=subject,
                body=body,
                message_id=row["message_id"],
                date=date,
            )
        except InvalidMessage as exc:
            result.invalid.append((row["pk"], str(exc)))
            continue
        rate_limit_wait()
        try:
            reply = client.send(sender_address(from_addr)[0], row["address"], message)
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


def _record(result: _ChunkResult, claim: _Claim, pause_s: float) -> _Recorded:
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
    sent = outcomes = 0
    with transaction.atomic():
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
        for cid in set(sent_per) | set(failed_per):
            campaign_counters_add(campaign_id=cid, sent=sent_per.get(cid, 0), failed=failed_per.get(cid, 0))
    expected = len(result.sent) + len(result.failed) + len(result.invalid) + len(result.deferred) + len(result.unsent)
    return _Recorded(sent=sent, campaigns=set(sent_per) | set(failed_per), lost=expected - sent - outcomes)


def deliveries_send(*, delivery_ids: list[int]) -> int:
    """Send the given deliveries (the email-sender handler); return how many were sent."""
    chunk_size = settings.EMAIL_SEND_CHUNK
    sent = 0
    for start in range(0, len(delivery_ids), chunk_size):
        claim = _claim(delivery_ids[start : start + chunk_size])
        if claim is None:
            continue
        result = _send_chunk(claim)
        pause = _outage_pause() if result.outage else 0.0
        if not result.outage:
            _outage.failures = 0
        recorded = _record(result, claim, pause)
        for cid in recorded.campaigns:
            campaign_complete_if_done(campaign_id=cid)
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
