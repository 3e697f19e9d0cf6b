from django.core.management.base import BaseCommand

from orders.services import shop_reset_to_seed


class Command(BaseCommand):
    help = "Reset seed 004's products and accounts (201–205, 101–103) to their seed values."

    def handle(self, *args, **options):
        shop_reset_to_seed()
        self.stdout.write("seed data: products 201-205 and accounts 101-103 reset")
