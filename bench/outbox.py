"""What the transactional outbox adds to a write: a transaction that creates one row and
publishes one event with `publish_on_commit`, next to the same transaction without the
event, on PostgreSQL (embedded) and Redis, in the same run. The rows of sent events are
deleted by the process's background thread (workers.publish.SentOutboxRows); its CPU is
part of the figure, since it shares the process.

    python -m bench.outbox [--writes 2000]
"""

import argparse
import itertools
import os
import time

from commsplatform.devservers import PostgresServer, RedisServer

from .common import emit, log, result_row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()

    with PostgresServer() as postgres, RedisServer() as redis_server:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="commsplatform.settings.base", DATABASE_URL=postgres.url, REDIS_URL=redis_server.url
        )
        import django

        django.setup()
        from django.contrib.auth.models import Group
        from django.core.management import call_command
        from django.db import transaction

        from workers.events import Event
        from workers.models import OutboxEvent
        from workers.publish import publish_on_commit, sent_rows

        call_command("migrate", verbosity=0)

        names = itertools.count()

        def write(with_event: bool) -> None:
            with transaction.atomic():
                group = Group.objects.create(name=f"g{next(names)}")
                if with_event:
                    publish_on_commit("bench-outbox", Event(type="bench.group.created", payload={"id": group.pk}))

        def rate(with_event: bool) -> float:
            started = time.perf_counter()
            for _ in range(args.writes):
                write(with_event)
            return args.writes / (time.perf_counter() - started)

        rate(False), rate(True)  # warm-up
        log("measuring")
        plain = [rate(False) for _ in range(3)]
        published = [rate(True) for _ in range(3)]
        plain_rate, published_rate = sorted(plain)[1], sorted(published)[1]
        waiting = OutboxEvent.objects.count()
        sent_rows.close()
        emit(
            {
                "benchmark": "outbox",
                **result_row(
                    name="outbox: writes/s with an event vs the same write without",
                    figure=round(published_rate),
                    baseline=round(plain_rate),
                    target=0.6,
                ),
                "writes": args.writes,
                "write_with_event_per_s": round(published_rate),
                "baseline_write_without_event_per_s": round(plain_rate),
                "stream_length": redis_server.client().xlen("bench-outbox"),
                "outbox_rows_waiting_for_the_delete_thread_at_the_end": waiting,
                "outbox_rows_left_after_close": OutboxEvent.objects.count(),
            }
        )


if __name__ == "__main__":
    main()
