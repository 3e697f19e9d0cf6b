import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from workers.connection import UNAVAILABLE_ERRORS
from workers.publish import relay_pending


class Command(BaseCommand):
    help = "Send outbox events that were not sent after their commit (Redis down, process died)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")

    def handle(self, *args, once, interval, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while True:
            close_old_connections()
            try:
                sent = relay_pending()
            except UNAVAILABLE_ERRORS as exc:
                sent = 0
                self.stderr.write(f"relay_outbox: Redis unavailable: {exc}")
            if sent:
                self.stdout.write(f"relay_outbox: sent {sent} event(s) older than {settings.OUTBOX_RELAY_GRACE_S}s")
            if once or stop.wait(interval):
                return
