"""Servers for the seed-002 benchmarks: PostgreSQL, Redis and an SMTP sink, each its own
process (URLs already in the environment win), and Django set up against them."""

import json
import os
import sys
import time

from commsplatform.devservers import PostgresServer, RedisServer, SmtpSinkProcess


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2), flush=True)  # before any os._exit in a server's teardown


class CommsStack:
    """`sqlite` (a file path) uses SQLite instead of starting PostgreSQL, as `make run` does;
    `maildir` makes the SMTP sink keep every mail there, as `make run`'s does; `smtp_sink`
    uses Postfix's C `smtp-sink` instead of the Python (aiosmtpd) sink."""

    def __init__(
        self, *, smtp: bool = False, sqlite: str | None = None, maildir: str | None = None, smtp_sink: bool = False
    ) -> None:
        self.servers = []
        if sqlite:
            os.environ["DATABASE_URL"] = f"sqlite:///{sqlite}"
        if not os.environ.get("DATABASE_URL"):
            self.servers.append(PostgresServer().start())
            os.environ["DATABASE_URL"] = self.servers[-1].url
        if not os.environ.get("REDIS_URL"):
            self.servers.append(RedisServer().start())
            os.environ["REDIS_URL"] = self.servers[-1].url
        self.smtp = None
        self.postfix_sink: PostfixSmtpSink | None = None
        if smtp_sink:
            self.postfix_sink = PostfixSmtpSink()
            self.servers.append(self.postfix_sink)
            os.environ["EMAIL_HOST"], os.environ["EMAIL_PORT"] = self.postfix_sink.host, str(self.postfix_sink.port)
        elif smtp:
            self.smtp = SmtpSinkProcess(maildir=maildir).start()
            self.servers.append(self.smtp)
            os.environ["EMAIL_HOST"], os.environ["EMAIL_PORT"] = self.smtp.host, str(self.smtp.port)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commsplatform.settings.base")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def close(self) -> None:
        for server in reversed(self.servers):
            server.close()


class PostfixSmtpSink:
    """Postfix's `smtp-sink` (C, one process, accepts and drops every mail) on a free port;
    `count()` reads its `-c` counter. The fast sink of `campaign_100k --smtp-sink`: the
    pipeline, not the mail server, is then what is measured."""

    PROGRAM = "/usr/sbin/smtp-sink"
    host = "127.0.0.1"

    def __init__(self) -> None:
        import shutil
        import subprocess
        import tempfile
        from pathlib import Path

        from commsplatform.devservers import free_port, port_is_open

        program = shutil.which("smtp-sink") or self.PROGRAM
        self.port = free_port()
        self.log_path = Path(tempfile.mkdtemp(prefix="smtp-sink-")) / "counter"
        command = [program, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # it refuses to run as root without a user to switch to
        command += [f"{self.host}:{self.port}", "1000"]  # backlog
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not port_is_open(self.host, self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"smtp-sink did not start: {self.log_path.read_text(errors='replace')[-500:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def count(self) -> int:
        """Mails accepted so far: the last `mesg=N` of its counter line (rewritten with CR)."""
        tail = self.log_path.read_bytes()[-200:]
        marks = tail.rsplit(b"mesg=", 1)
        return int(marks[1].split(b"\r")[0].strip() or 0) if len(marks) == 2 else 0

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except Exception:
            self.process.kill()
