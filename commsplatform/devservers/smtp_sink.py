"""The SMTP sink behind `python -m commsplatform.devservers smtp`: accept, count, log, keep.

It stands in for Inbucket in `make run` and in benchmarks that need the mail server out
of the measured process. One log line per message; with a Maildir, every message is
also written there (readable with mutt, or any MUA: `mutt -f var/mail`).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.controller import Controller

_headers = BytesHeaderParser()


class MaildirWriter:
    """Delivers raw messages into a Maildir: write into tmp/, rename into new/.

    `mailbox.Maildir.add` fsyncs every message (about 1 ms each here), which made the
    sink, not the platform, the ceiling of `make run`. A sink for development keeps the
    Maildir protocol (a reader never sees a partial file) without the fsync: a machine
    crash may lose the last mails, which a test sink can afford.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._unique = f"{os.getpid()}.{socket.gethostname().replace('/', '_').replace(':', '_')}"
        self._count = 0

    def add(self, raw: bytes) -> str:
        self._count += 1
        name = f"{time.time_ns()}.M{self._count}P{self._unique}"
        tmp = self.path / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw.replace(b"\r\n", b"\n"))
        finally:
            os.close(fd)
        os.rename(tmp, self.path / "new" / name)
        return name


class SinkHandler:
    """Counts every message; logs one line each; stores it in a Maildir when given one."""

    def __init__(self, *, out: TextIO, maildir: Path | None = None) -> None:
        self.out = out
        self.maildir = MaildirWriter(maildir) if maildir else None
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        headers = _headers.parsebytes(raw)
        with self._lock:
            self.count += 1
            number = self.count
            if self.maildir is not None:
                self.maildir.add(raw)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        print(
            f"{stamp} mail #{number} from={envelope.mail_from} to={','.join(envelope.rcpt_tos)} "
            f"subject={headers.get('Subject', '')!r} message-id={headers.get('Message-ID', '')}",
            file=self.out,
            flush=True,
        )
        return "250 Message accepted for delivery"


def run_sink(*, host: str, port: int, maildir: Path | None, out: TextIO) -> int:
    """Serve until SIGINT/SIGTERM, then print the total; returns the number of mails."""
    handler = SinkHandler(out=out, maildir=maildir)
    controller = Controller(handler, hostname=host, port=port, enable_SMTPUTF8=True)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    controller.start()
    where = f", maildir {maildir}" if maildir else ""
    print(f"smtp sink listening on {host}:{port}{where}", file=out, flush=True)
    try:
        stopping.wait()
    finally:
        controller.stop()
    print(f"smtp sink stopped after {handler.count} mails", file=out, flush=True)
    return handler.count
