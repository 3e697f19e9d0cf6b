"""`manage.py worker_health <consumer>` / `--relay`: a container healthcheck for processes without a port.

Exit 0 when healthy, 1 (with the reason on stderr) otherwise:
- Redis answers PING;
- a stream consumer's group exists on its stream (the worker creates it on start);
- when settings.WORKER_HEARTBEAT_DIR is set, the consumer's heartbeat file (touched by
  `runworker` while all its threads are alive) is younger than WORKER_HEARTBEAT_MAX_AGE_S
  and does not say `stalled: …` (a live consumer making no progress, e.g. the Kafka
  ingest while Redis refuses its writes for WORKER_STALL_S) or `stuck: …` (a stream
  consumer's handler running past its time limit, workers.runner);
  a file saying `paused` is healthy (an operator paused it, workers.steering): exit 0,
  printing `paused: <name>`;
- `--relay` (the outbox relay): Redis and the database answer.
"""

import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from workers.connection import UNAVAILABLE_ERRORS, get_redis
from workers.heartbeat import heartbeat_path
from workers.registry import CONSUMERS, all_names


class Command(BaseCommand):
    help = "Exit 0 if the named consumer (or --relay) looks healthy, 1 otherwise: a Docker healthcheck."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="consumer name (see runworker --list)")
        parser.add_argument("--relay", action="store_true", help="check the outbox relay's dependencies")

    def handle(self, *args, name, relay, **options):
        if not relay and name not in all_names():
            raise CommandError(f"unknown consumer {name!r}; see runworker --list")
        client = get_redis()
        try:
            client.ping()
        except UNAVAILABLE_ERRORS as exc:
            raise CommandError(f"redis unreachable: {exc}")
        if relay:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except Exception as exc:  # any driver error means "cannot relay"
                raise CommandError(f"database unreachable: {exc}")
            self.stdout.write("ok: relay (redis, database)")
            return
        if name in CONSUMERS:
            spec = CONSUMERS[name]
            try:
                groups = {group["name"] for group in client.xinfo_groups(spec.stream_name)}
            except redis.ResponseError:
                groups = set()  # no such stream yet
            if spec.group_name not in groups:
                raise CommandError(f"group {spec.group_name!r} does not exist on stream {spec.stream_name!r}")
        if settings.WORKER_HEARTBEAT_DIR:
            path = heartbeat_path(name)
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                raise CommandError(f"no heartbeat at {path}")
            if age > settings.WORKER_HEARTBEAT_MAX_AGE_S:
                raise CommandError(f"heartbeat is {age:.0f}s old (max {settings.WORKER_HEARTBEAT_MAX_AGE_S:.0f}s)")
            note = path.read_text(errors="replace").strip()
            if note == "paused":
                self.stdout.write(f"paused: {name}")
                return
            if note:
                raise CommandError(f"{name}: {note}")
        self.stdout.write(f"ok: {name}")
