import json
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from commsplatform.selectors import staff_token_get
from weather.loadtest import LoadTestAborted, weather_loadtest


class Command(BaseCommand):
    help = (
        "Load-test a running server (the seed's load-test script): checks /healthz, then sends "
        "--count forecast requests sequentially or concurrently and reports success rate and latency."
    )

    def add_arguments(self, parser):
        parser.add_argument("scenario", choices=["weather"], help="what to load-test")
        parser.add_argument("--mode", choices=["sequential", "concurrent"], default="sequential")
        parser.add_argument("--count", type=int, default=10, help="number of requests (default 10)")
        parser.add_argument("--concurrency", type=int, default=10, help="parallel clients in concurrent mode")
        parser.add_argument(
            "--url",
            default=settings.API_URL,
            help="server base URL (default: $API_URL, else the one `make run` serves)",
        )
        parser.add_argument(
            "--token",
            default=os.environ.get("LOADTEST_TOKEN"),
            help="API token (default: $LOADTEST_TOKEN, else a staff user's token from the database)",
        )
        parser.add_argument("--timeout", type=float, default=60.0, help="per-request client timeout in seconds")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, scenario, mode, count, concurrency, url, token, timeout, as_json, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        token = token or staff_token_get()
        if not token:
            raise CommandError(
                "no token: pass --token or set LOADTEST_TOKEN (no staff user in the database has one; "
                "`python manage.py ensure_admin` creates it)"
            )
        self.stderr.write(f"{scenario} load test: {count} request(s), {mode}, against {url}")
        step = max(1, count // 20)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                self.stderr.write(f"\r  {done}/{total} ({done * 100 // total}%)", ending="\n" if done == total else "")
                self.stderr.flush()

        try:
            report = weather_loadtest(
                url=url,
                token=token,
                mode=mode,
                count=count,
                concurrency=concurrency,
                timeout=timeout,
                progress=progress,
            )
        except (LoadTestAborted, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        summary = report.summary()
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self._print(summary)
        if summary["failed"]:
            refused = " (401: the server refused the token)" if "401" in summary["statuses"] else ""
            raise CommandError(f"{summary['failed']} of {summary['requests']} requests failed{refused}")

    def _print(self, summary: dict) -> None:
        self.stdout.write(
            f"Success: {summary['succeeded']}/{summary['requests']} ({summary['success_rate']:.1%})  "
            f"statuses {summary['statuses']}  in {summary['elapsed_s']} s ({summary['requests_per_s']} req/s)"
        )
        if summary["avg_ms"] is not None:
            self.stdout.write(
                "Latency ms: avg {avg_ms}  min {min_ms}  max {max_ms}  p50 {p50_ms}  p95 {p95_ms}  p99 {p99_ms}".format(
                    **summary
                )
            )
