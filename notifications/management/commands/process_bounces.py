from django.core.management.base import BaseCommand, CommandError

from notifications.bounces import maildir_process


class Command(BaseCommand):
    help = (
        "Read RFC 3464 delivery status notifications from a Maildir's new/ folder: a permanent "
        "failure (Status 5.x.x) suppresses the address and marks the delivery bounced; each "
        "message read is moved to cur/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--maildir", required=True, help="the Maildir folder (with new/, cur/, tmp/)")

    def handle(self, *args, maildir, **options):
        try:
            result = maildir_process(maildir)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{result.reports} delivery reports: {result.bounces} deliveries bounced, "
            f"{result.suppressed} addresses suppressed; {result.other} other messages moved to cur/"
        )
