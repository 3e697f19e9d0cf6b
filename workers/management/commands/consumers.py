"""`manage.py consumers list | pause <name> [--reason …] | resume <name>`: steer registry entries."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from workers.connection import UNAVAILABLE_ERRORS
from workers.registry import all_names
from workers.stats import consumer_overview
from workers.steering import consumer_pause, consumer_resume


class Command(BaseCommand):
    help = "List registry entries with their state, or pause / resume one (every replica, on every host)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "pause", "resume"])
        parser.add_argument("name", nargs="?", help="entry name (see runworker --list)")
        parser.add_argument("--reason", default="", help="with pause: why (kept with the state, logged)")
        parser.add_argument("--by", default="", help="who is steering (default: cli:<login user>)")

    def handle(self, *args, action, name, reason, by, **options):
        try:
            if action == "list":
                self._list(name)
                return
            if not name:
                raise CommandError(f"{action} needs a consumer name; see runworker --list")
            if name not in all_names():
                raise CommandError(f"unknown consumer {name!r}; see runworker --list")
            who = by or f"cli:{getpass.getuser()}"
            if action == "pause":
                consumer_pause(name=name, by=who, reason=reason)
                self.stdout.write(f"paused: {name}")
            else:
                consumer_resume(name=name, by=who)
                self.stdout.write(f"resumed: {name}")
        except UNAVAILABLE_ERRORS as exc:
            raise CommandError(f"redis unreachable, nothing changed: {exc}")

    def _list(self, name: str | None) -> None:
        rows: list[tuple[str, ...]] = [("NAME", "KIND", "STATE", "REPLICAS", "RATE/S", "PENDING", "LAG", "DEAD")]
        for row in consumer_overview():
            if name and row.name != name:
                continue
            state = f"paused by {row.paused_by}" if row.paused else "running"
            if row.stuck_replicas:
                state += f", {row.stuck_replicas} stuck"
            rate = "-" if row.rate_per_s is None else f"{row.rate_per_s:.1f}"
            rows.append(
                (
                    row.name,
                    row.kind,
                    state,
                    str(row.replicas),
                    rate,
                    *("-" if v is None else str(v) for v in (row.pending, row.lag, row.dead_letters)),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
