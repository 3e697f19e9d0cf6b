import json
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from commsplatform.selectors import staff_token_get
from notifications.simulator import simulate_events


class Command(BaseCommand):
    help = "Simulate seed-001 traffic: POST /event at a steady rate, then print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=10.0, help="events per second")
        parser.add_argument("--duration", type=float, default=10.0, help="seconds")
        parser.add_argument(
            "--url",
            default=settings.API_URL,
            help="server base URL (default: $API_URL, else the one `make run` serves)",
        )
        parser.add_argument("--token", default=os.environ.get("API_TOKEN"), help="API token (default: a staff token)")
        parser.add_argument("--concurrency", type=int, default=8)

    def handle(self, *args, rate, duration, url, token, concurrency, **options):
        if rate <= 0 or duration <= 0:
            raise CommandError("--rate and --duration must be positive")
        token = token or staff_token_get()
        if not token:
            raise CommandError("no --token given and no staff token in the database (run ensure_admin)")

        def progress(result):
            sys.stderr.write(f"\r{result.sent} sent, {result.errors} errors, {result.elapsed_s:.0f}/{duration:.0f}s")
            sys.stderr.flush()

        result = simulate_events(
            url=url.rstrip("/") + "/event",
            token=token,
            rate=rate,
            duration=duration,
            concurrency=concurrency,
            on_progress=progress,
        )
        sys.stderr.write("\n")
        summary = result.summary()
        self.stdout.write(json.dumps(summary, indent=2))
        if result.errors:
            raise CommandError(f"{result.errors} of {result.sent} requests to {url} failed: {summary['status_counts']}")
