from django.core.management.base import BaseCommand, CommandError

from commsplatform.tracing import setup_tracing
from workers.registry import ConsumerSpec, KafkaSpec, all_entries, all_names, get_entry
from workers.runner import Runner


class Command(BaseCommand):
    # Checks cost a second at every start and say nothing `migrate` did not already.
    requires_system_checks: list[str] = []
    help = "Run entries of the worker registry (one by name, or --all), until SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="entry names (see --list)")
        parser.add_argument("--all", action="store_true", help="run every registered entry in this process")
        parser.add_argument("--list", action="store_true", help="print the registry and exit")
        parser.add_argument("--consumer-name", help="stable consumer name in the group (default host-pid)")
        parser.add_argument(
            "--exclude", action="append", default=[], metavar="NAME", help="with --all: leave this entry out"
        )

    def handle(self, *args, names, all, list, consumer_name, exclude, **options):
        if list:
            self._print_table()
            return
        known = all_names()
        unknown = [n for n in exclude if n not in known]
        if unknown:
            raise CommandError(f"unknown consumer(s) to exclude: {', '.join(unknown)}; see runworker --list")
        if exclude and not all:
            raise CommandError("--exclude goes with --all")
        if all:
            names = [n for n in known if n not in exclude]
        if not names:
            raise CommandError("name at least one consumer, or use --all / --list")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandError(f"unknown consumer(s): {', '.join(unknown)}; see runworker --list")
        setup_tracing(f"commsplatform-worker-{'all' if all else '+'.join(names)}")
        runner = Runner([get_entry(n) for n in names], consumer_name=consumer_name)
        runner.install_signal_handlers()
        self.stdout.write(f"runworker: {', '.join(names)}")
        runner.run()

    def _print_table(self) -> None:
        rows = [("NAME", "KIND", "SOURCE", "GROUP", "HANDLER", "BATCH", "CONCURRENCY")]
        for entry in all_entries():
            if isinstance(entry, ConsumerSpec):
                source, group, handler = entry.stream_name, entry.group_name, entry.handler
                batch, concurrency = str(entry.batch_size), str(entry.concurrency)
            elif isinstance(entry, KafkaSpec):
                source, group, handler = entry.topic, entry.group, entry.handler
                batch, concurrency = str(entry.batch_size), "1"
            else:
                source, group, handler = f"every {entry.interval_s:g}s", "-", entry.tick
                batch, concurrency = "-", "1"
            rows.append((entry.name, entry.kind, source, group, handler, batch, concurrency))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
