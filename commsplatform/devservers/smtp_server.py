"""SMTP servers: an in-process recording server for tests, and the sink process for `make run`."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import smtplib
import sys
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

from ._process import ProcessServer, free_port

COMMSPLATFORM_ROOT = Path(__file__).resolve().parent.parent.parent

# aiosmtpd logs every SMTP command at INFO; in test reports that drowns the failure.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message, as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    message_id: str | None
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def body(self) -> str:
        """The text body (the plain part of a multipart message)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""  # type: ignore[union-attr]


class _RefusalRules:
    """What the server refuses right now; shared between the test thread and the SMTP loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all_code: int | None = None
        self._all_until: float | None = None
        self._addresses: dict[str, int] = {}
        self._data_delay = 0.0

    def delay_data(self, seconds: float) -> None:
        with self._lock:
            self._data_delay = seconds

    def data_delay(self) -> float:
        with self._lock:
            return self._data_delay

    def refuse_all(self, code: int, seconds: float | None) -> None:
        with self._lock:
            self._all_code = code
            self._all_until = time.monotonic() + seconds if seconds is not None else None

    def refuse_address(self, address: str, code: int) -> None:
        with self._lock:
            self._addresses[address.lower()] = code

    def accept_all(self) -> None:
        with self._lock:
            self._all_code = self._all_until = None
            self._addresses.clear()

    def all_code(self) -> int | None:
        with self._lock:
            if self._all_until is not None and time.monotonic() >= self._all_until:
                self._all_code = self._all_until = None
            return self._all_code

    def address_code(self, address: str) -> int | None:
        with self._lock:
            return self._addresses.get(address.lower())


def _reply(code: int, text: str) -> str:
    # Enhanced status: class 4 = try again later, 5 = permanent (RFC 3463).
    return f"{code} {str(code)[0]}.{text}"


class _RecordingHandler:
    def __init__(self, rules: _RefusalRules, on_mail: Any) -> None:
        self.rules = rules
        self.on_mail = on_mail

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        code = self.rules.all_code()
        if code is not None:
            return _reply(code, "3.0 Refusing all mail for now")
        code = self.rules.address_code(address)
        if code is not None:
            return _reply(code, f"1.1 Mailbox unavailable: {address}")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        delay = self.rules.data_delay()
        if delay:
            await asyncio.sleep(delay)  # a slow server; other sessions go on meanwhile
        code = self.rules.all_code()
        if code is not None:
            return _reply(code, "3.0 Refusing all mail for now")
        raw = bytes(envelope.original_content or envelope.content)
        # Parsed with plain newlines, so that tests compare bodies as Python text.
        message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        message_id = message.get("Message-ID")
        self.on_mail(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,  # type: ignore[arg-type]
                message_id=str(message_id) if message_id else None,
                raw=raw,
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server in a background thread that records every accepted message.

    `refuse_all()` answers every RCPT and DATA with a temporary error (for a while, or
    until `accept_all()`); `refuse_address()` rejects one recipient permanently;
    `delay_data()` makes every DATA reply wait.
    """

    host = "127.0.0.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port(self.host)
        self.rules = _RefusalRules()
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._controller: Controller | None = None

    # --- recorded mail ------------------------------------------------------------------
    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._received.append(mail)

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while len(received := self.messages) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} mails within {timeout} s, got {len(received)}")
            time.sleep(0.02)
        return received

    # --- refusal modes ------------------------------------------------------------------
    def refuse_all(self, code: int = 451, seconds: float | None = None) -> None:
        """Refuse every RCPT and DATA with `code` (for `seconds`, or until accept_all())."""
        self.rules.refuse_all(code, seconds)

    def accept_all(self) -> None:
        """Lift every refusal."""
        self.rules.accept_all()

    def refuse_address(self, address: str, code: int = 550) -> None:
        """Refuse one recipient (case-insensitively) with `code`."""
        self.rules.refuse_address(address, code)

    def delay_data(self, seconds: float) -> None:
        """Answer each DATA only after `seconds` (0: at once), like a slow server."""
        self.rules.delay_data(seconds)

    # --- life cycle ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> Self:
        if self._controller is None:
            controller = Controller(
                _RecordingHandler(self.rules, self._record),
                hostname=self.host,
                port=self.port,
                enable_SMTPUTF8=True,
                ready_timeout=10,
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def kill(self) -> None:
        """Same as stop(): an in-process server cannot crash on its own."""
        self.stop()

    def restart(self) -> Self:
        """Stop and start on the same port; recorded mail and refusal rules stay."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SmtpSinkProcess(ProcessServer):
    """`python -m commsplatform.devservers smtp` as a child process (for make run and benchmarks)."""

    name = "smtp"

    def __init__(
        self, port: int | None = None, maildir: str | Path | None = None, data_dir: str | Path | None = None
    ) -> None:
        super().__init__(port=port, data_dir=data_dir)
        self.maildir = Path(maildir).resolve() if maildir else None

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "commsplatform.devservers", "smtp", "--port", str(self.port)]
        if self.maildir:
            argv += ["--maildir", str(self.maildir)]
        return argv

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The child runs in data_dir, so it must find this package through PYTHONPATH.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COMMSPLATFORM_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def is_ready(self) -> bool:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=1) as client:
                return client.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False
