from django.core.management.base import BaseCommand
from tqdm import tqdm

from users.services import recipients_generate


class Command(BaseCommand):
    help = "Insert fake recipients (seed 002's 100,000 users) with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible data")

    def handle(self, *args, count, seed, **options):
        with tqdm(total=count, unit="users", disable=options["verbosity"] < 1) as bar:
            created = recipients_generate(count=count, seed=seed, progress=bar.update)
        self.stdout.write(f"created {created} recipients")
