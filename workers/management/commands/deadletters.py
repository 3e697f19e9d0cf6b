"""`manage.py deadletters list|show|redrive|purge <stream> [--id … | --consumer … --error … --older-than …] [--yes]`.

The same selectors and services as the admin and the API (workers.deadletters); every
redrive or purge is recorded in the audit log as `cli:<os user>`. Without `--yes`,
redrive and purge list what they would act on and ask; anything but "yes" changes nothing.
"""

import getpass
import json
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from workers import deadletters
from workers.deadletters import DeadLetter, DeadLetterFilter


class Command(BaseCommand):
    help = "List, show, redrive or purge the dead letters of a stream (<stream>:dlq)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "show", "redrive", "purge"])
        parser.add_argument("stream")
        parser.add_argument("--id", action="append", dest="ids", metavar="ENTRY_ID", help="a DLQ entry id (repeatable)")
        parser.add_argument("--consumer", default="", help="only dead letters of this consumer")
        parser.add_argument("--error", default="", help="only dead letters whose error contains this text")
        parser.add_argument(
            "--older-than", type=float, default=None, metavar="SECONDS", help="dead-lettered ≥ this ago"
        )
        parser.add_argument("--yes", action="store_true", help="redrive/purge without asking")

    def handle(self, *args, action, stream, ids, consumer, error, older_than, yes, **options):
        try:
            wanted = None if ids else DeadLetterFilter(consumer=consumer, error_contains=error, older_than_s=older_than)
            if ids and (consumer or error or older_than is not None):
                raise CommandError("give either --id or a filter (--consumer, --error, --older-than), not both")
            if action == "show":
                self._show(stream, ids)
                return
            letters = self._selected(stream, ids, wanted)
            if action == "list":
                self._list(letters)
                return
            if not letters:
                self.stdout.write("No dead letters match; nothing to do.")
                return
            self._list(letters)
            if not yes and input(f"{action} these {len(letters)} dead letter(s)? Type 'yes': ").strip() != "yes":
                raise CommandError("not confirmed; nothing changed")
            if wanted is not None:  # act on what was listed, not on dead letters that arrived since
                wanted = replace(wanted, max_id=letters[0].id)
            service = deadletters.dead_letters_redrive if action == "redrive" else deadletters.dead_letters_purge
            result = service(stream=stream, actor=f"cli:{getpass.getuser()}", ids=ids, wanted=wanted)
        except (deadletters.DeadLetterStreamUnknown, deadletters.DeadLetterSelectionInvalid) as exc:
            raise CommandError(str(exc)) from exc
        verb = "redriven" if action == "redrive" else "purged"
        self.stdout.write(f"{len(result.done)} of {result.requested} {verb} (audit #{result.audit_id})")

    def _selected(self, stream: str, ids: list[str] | None, wanted: DeadLetterFilter | None) -> list[DeadLetter]:
        if ids is None:
            return deadletters.dead_letter_list(stream=stream, wanted=wanted)
        found = [deadletters.dead_letter_get(stream=stream, entry_id=i) for i in ids]
        missing = [i for i, letter in zip(ids, found, strict=True) if letter is None]
        if missing:
            self.stderr.write(f"not in the DLQ (skipped): {', '.join(missing)}")
        return [letter for letter in found if letter is not None]

    def _list(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            self.stdout.write(
                f"{letter.id}  {letter.dead_lettered_at:%Y-%m-%d %H:%M:%S}  {letter.consumer}  "
                f"{letter.event_type}  attempts={letter.attempts} redrives={letter.redrive_count}  {letter.error[:120]}"
            )
        self.stdout.write(f"{len(letters)} dead letter(s)")

    def _show(self, stream: str, ids: list[str] | None) -> None:
        if not ids:
            raise CommandError("show needs --id ENTRY_ID")
        for entry_id in ids:
            letter = deadletters.dead_letter_get(stream=stream, entry_id=entry_id)
            if letter is None:
                raise CommandError(f"no dead letter {entry_id} in {stream}")
            shown = {
                "id": letter.id,
                "stream": letter.stream,
                "original_entry_id": letter.original_entry_id,
                "event_id": letter.event_id,
                "event_type": letter.event_type,
                "payload": letter.payload,
                "error": letter.error,
                "attempts": letter.attempts,
                "consumer": letter.consumer,
                "group": letter.group,
                "dead_lettered_at": letter.dead_lettered_at.isoformat(),
                "redrive_count": letter.redrive_count,
            }
            self.stdout.write(json.dumps(shown, indent=2, ensure_ascii=False))
