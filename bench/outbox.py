"""What the transactional outbox adds to a write: a transaction that creates one row and
publishes one event with `publish_on_commit`, next to the same transaction without the
event, on PostgreSQL (embedded) and Redis, in the same run. The rows of sent events are
deleted by the process's background thread (workers.publish.SentOutboxRows), which also
reads Redis's replies to the XADDs; its CPU is part of the figure, since it shares the
process, and a round with events ends by closing it (what it had not reached yet is done
in that round's own time), so none of its work falls into the next round.

Django runs with DEBUG off, as in production: DEBUG on logs every query, composing its SQL
in Python, which is a cost of development runs, not of the outbox. The two kinds of write
alternate in rounds (plain, with event, with event, plain, …) so that the load of a shared
machine drifting during the run falls on both alike; the figures are the medians of the
rounds, and the spread of the per-round ratios is printed next to them.

    python -m bench.outbox [--writes 1000] [--rounds 6]
"""

import argparse
import itertools
import os
import statistics
import time

from commsplatform.devservers import PostgresServer, RedisServer

from .common import emit, log, result_row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=1000, help="writes per kind and round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    with PostgresServer() as postgres, RedisServer() as redis_server:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="commsplatform.settings.base",
            DJANGO_DEBUG="false",
            DATABASE_URL=postgres.url,
            REDIS_URL=redis_server.url,
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

        def rate(with_event: bool) -> tuple[float, float]:
            """Writes per second, and CPU µs of this process (every thread) per write."""
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.writes):
                write(with_event)
            if with_event:
                # The replies and sent rows the delete thread has not reached yet are this
                # round's work, not the next round's (a round without events may follow).
                sent_rows.close()
            return args.writes / (time.perf_counter() - started), (time.process_time() - cpu) / args.writes * 1e6

        rate(False), rate(True)  # warm-up
        log("measuring")
        plain: list[tuple[float, float]] = []
        published: list[tuple[float, float]] = []
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for with_event in order:
                (published if with_event else plain).append(rate(with_event))
        plain_rate = statistics.median(r for r, _ in plain)
        published_rate = statistics.median(r for r, _ in published)
        round_ratios = sorted(p[0] / b[0] for p, b in zip(published, plain, strict=True))
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
                "django_debug": False,
                "writes_per_round": args.writes,
                "rounds": args.rounds,
                "round_ratios_min_median_max": [
                    round(round_ratios[0], 3),
                    round(statistics.median(round_ratios), 3),
                    round(round_ratios[-1], 3),
                ],
                "write_with_event_per_s": round(published_rate),
                "baseline_write_without_event_per_s": round(plain_rate),
                "cpu_us_per_write_with_event": round(statistics.median(c for _, c in published)),
                "cpu_us_per_write_without_event": round(statistics.median(c for _, c in plain)),
                "stream_length": redis_server.client().xlen("bench-outbox"),
                "outbox_rows_waiting_for_the_delete_thread_at_the_end": waiting,
                "outbox_rows_left_after_close": OutboxEvent.objects.count(),
            }
        )


if __name__ == "__main__":
    main()
