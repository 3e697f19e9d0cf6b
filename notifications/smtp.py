"""One persistent SMTP session per sender thread, reconnected when the server drops it."""

import contextlib
import smtplib
import threading
from dataclasses import dataclass

from django.conf import settings

from workers.tracing import sampled_send


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
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
            self._conn = None

    @sampled_send  # with tracing on, a span for one send in TRACING_SMTP_SPAN_EVERY
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


def smtp_client() -> SmtpClient:
    """This thread's persistent client."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = SmtpClient()
    return client
