from django.core.management.base import BaseCommand

from workers.registry import CONSUMERS
from workers.trimming import trim_stream


class Command(BaseCommand):
    help = "Trim every consumed stream below what all its groups have acknowledged."

    def handle(self, *args, **options):
        for stream in sorted({spec.stream_name for spec in CONSUMERS.values()}):
            result = trim_stream(stream)
            self.stdout.write(
                f"{stream}: removed {result.removed}, over-cap dropped {result.cap_dropped}, safe point {result.safe_point}"
            )
