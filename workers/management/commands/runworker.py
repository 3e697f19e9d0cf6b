from django.core.management.base import BaseCommand, CommandError

from workers.registry import CONSUMERS, EXTERNAL_CONSUMERS, get_consumer
from workers.runner import Runner


class Command(BaseCommand):
    # Checks cost a second at every start and say nothing `migrate` did not already.
    requires_system_checks: list[str] = []
    help = "Run stream consumers from the registry (one by name, or --all), until SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="consumer names (see --list)")
        parser.add_argument("--all", action="store_true", help="run every registered consumer in this process")
        parser.add_argument("--list", action="store_true", help="print the consumer table and exit")
        parser.add_argument("--consumer-name", help="stable consumer name in the group (default host-pid)")
        parser.add_argument(
            "--exclude", action="append", default=[], metavar="NAME", help="with --all: leave this consumer out"
        )

    def handle(self, *args, names, all, list, consumer_name, exclude, **options):
        if list:
            self._print_table()
            return
        unknown = [n for n in exclude if n not in CONSUMERS and n not in EXTERNAL_CONSUMERS]
        if unknown:
            raise CommandError(f"unknown consumer(s) to exclude: {', '.join(unknown)}; see runworker --list")
        if exclude and not all:
            raise CommandError("--exclude goes with --all")
        if all:
            names = [n for n in [*CONSUMERS, *EXTERNAL_CONSUMERS] if n not in exclude]
        if not names:
            raise CommandError("name at least one consumer, or use --all / --list")
        unknown = [n for n in names if n not in CONSUMERS and n not in EXTERNAL_CONSUMERS]
        if unknown:
            raise CommandError(f"unknown consumer(s): {', '.join(unknown)}; see runworker --list")
        runner = Runner(
            [get_consumer(n) for n in names if n in CONSUMERS],
            [n for n in names if n in EXTERNAL_CONSUMERS],
            consumer_name=consumer_name,
        )
        runner.install_signal_handlers()
        self.stdout.write(f"runworker: {', '.join(names)}")
        runner.run()

    def _print_table(self) -> None:
        rows = [("NAME", "STREAM", "GROUP", "HANDLER", "BATCH", "CONCURRENCY")]
        for spec in CONSUMERS.values():
            rows.append(
                (
                    spec.name,
                    spec.stream_name,
                    spec.group_name,
                    spec.handler,
                    str(spec.batch_size),
                    str(spec.concurrency),
                )
            )
        for name, path in EXTERNAL_CONSUMERS.items():
            rows.append((name, "(external)", "-", path, "-", "1"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
