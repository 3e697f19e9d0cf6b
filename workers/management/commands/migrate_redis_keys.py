"""`manage.py migrate_redis_keys`: rename the pre-hash-tag dead-letter streams and metric hashes."""

from django.core.management.base import BaseCommand

from workers.keymigration import migrate_legacy_keys


class Command(BaseCommand):
    help = "Move <stream>:dlq and workers:metrics:* keys of a single Redis to their {<stream>} names (run once)."

    def handle(self, *args, **options):
        moved = migrate_legacy_keys()
        for item in moved:
            self.stdout.write(f"{item.old} -> {item.new} ({item.items})")
        self.stdout.write(f"{len(moved)} key(s) moved")
