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
    print(json.dumps(result, indent=2))


class CommsStack:
    """`sqlite` (a file path) uses SQLite instead of starting PostgreSQL, as `make run` does;
    `maildir` makes the SMTP sink keep every mail there, as `make run`'s does."""

    def __init__(self, *, smtp: bool = False, sqlite: str | None = None, maildir: str | None = None) -> None:
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
        if smtp:
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
