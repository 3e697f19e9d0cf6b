"""`manage.py k8s_manifests [--check]`: (re)write docker/k8s's per-consumer manifests from the registry."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers import k8s_manifests


class Command(BaseCommand):
    help = "Write docker/k8s/base/consumers and overlays/production/consumers from workers/registry.py."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")

    def handle(self, *args, check, **options):
        changed = k8s_manifests.stale() if check else k8s_manifests.write()
        for path in changed:
            self.stdout.write(str(path.relative_to(settings.BASE_DIR)))
        if check and changed:
            raise CommandError("out of date: run `python manage.py k8s_manifests` and commit the result")
