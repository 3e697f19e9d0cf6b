import threading
from dataclasses import replace

from django.core.management.base import BaseCommand

from workers.periodic import PeriodicLoop
from workers.registry import PERIODIC
from workers.runner import Runner


class Command(BaseCommand):
    help = "Send outbox events whose post-commit send failed (Redis down, process died); `runworker relay`."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--interval", type=float, help="seconds between passes (default: the registry's)")

    def handle(self, *args, once, interval, **options):
        spec = PERIODIC["relay"] if interval is None else replace(PERIODIC["relay"], interval=interval)
        if once:
            sent = PeriodicLoop(spec, stop=threading.Event()).run_once()
            self.stdout.write(f"relay_outbox: sent {sent or 0} event(s)")
            return
        runner = Runner([spec])
        runner.install_signal_handlers()
        runner.run()
