import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from notifications.simulator import simulate_events


class Command(BaseCommand):
    help = "Simulate seed-001 traffic: POST /event at a steady rate, then print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=10.0, help="events per second")
        parser.add_argument("--duration", type=float, default=10.0, help="seconds")
        parser.add_argument("--url", default=os.environ.get("API_URL", "http://127.0.0.1:8000"), help="server base URL")
        parser.add_argument("--token", default=os.environ.get("API_TOKEN"), help="API token (default: a staff token)")
        parser.add_argument("--concurrency", type=int, default=8)

    def handle(self, *args, rate, duration, url, token, concurrency, **options):
        if rate <= 0 or duration <= 0:
            raise CommandError("--rate and --duration must be positive")
        if not token:
            staff_token = Token.objects.filter(user__is_staff=True).first()
            if staff_token is None:
                raise CommandError("no --token given and no staff token in the database (run ensure_admin)")
            token = staff_token.key

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
        self.stdout.write(json.dumps(result.summary(), indent=2))
