"""Writes for recipients: create one, or generate many fake ones fast.

`recipients_generate` is the seed's "100,000 fake users" at bulk speed: names come from
Faker's own name lists (drawn with one `random.choices` call instead of one Faker call
per field, which alone would take longer than the whole target), and rows go in with
PostgreSQL `COPY` into a staging table followed by `INSERT … ON CONFLICT DO NOTHING`
(other databases: `bulk_create(ignore_conflicts=True)`).
"""

import random
import re
import uuid
from collections.abc import Callable, Iterator

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from faker.providers.internet.en_US import Provider as InternetProvider
from faker.providers.person.en_US import Provider as PersonProvider

from .models import Recipient

GENERATE_CHUNK = 10_000
_EMAIL_DOMAINS = (*InternetProvider.free_email_domains, "example.com", "example.org", "example.net")
_COLUMNS = (
    "username",
    "name",
    "last_name",
    "email",
    "mobile",
    "device_id",
    "opted_out",
    "created_at",
    "updated_at",
)


def recipient_create(
    *,
    username: str,
    name: str = "",
    last_name: str = "",
    email: str | None = None,
    mobile: str = "",
    device_id: str = "",
    opted_out: bool = False,
) -> Recipient:
    recipient = Recipient(
        username=username,
        name=name,
        last_name=last_name,
        email=email.lower() if email else None,
        mobile=mobile,
        device_id=device_id,
        opted_out=opted_out,
    )
    recipient.full_clean()
    recipient.save()
    return recipient


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower()) or "user"


def _fake_rows(count: int, first_number: int, rng: random.Random) -> Iterator[tuple]:
    """Realistic, unique rows: the running number makes usernames and emails unique."""
    firsts = list(PersonProvider.first_names)
    lasts = list(PersonProvider.last_names)
    first_names = rng.choices(firsts, k=count)
    last_names = rng.choices(lasts, k=count)
    domains = rng.choices(_EMAIL_DOMAINS, k=count)
    slugs: dict[str, str] = {}
    now = timezone.now()
    for i in range(count):
        number = first_number + i
        first, last = first_names[i], last_names[i]
        f = slugs.get(first) or slugs.setdefault(first, _slug(first))
        ln = slugs.get(last) or slugs.setdefault(last, _slug(last))
        yield (
            f"{f}.{ln}{number}",
            first,
            last,
            f"{f}.{ln}.{number}@{domains[i]}",
            f"+1{rng.randrange(201, 990)}{rng.randrange(2_000_000, 10_000_000)}",
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            False,
            now,
            now,
        )


def _insert_postgres(rows: list[tuple]) -> int:
    table = Recipient._meta.db_table
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS recipient_staging ON COMMIT DELETE ROWS "  # noqa: S608 (names from the model)
            f"AS SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.copy(f"COPY recipient_staging ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM recipient_staging ON CONFLICT DO NOTHING"  # noqa: S608
        )
        return cursor.rowcount


def _insert_generic(rows: list[tuple]) -> int:
    before = Recipient.objects.count()
    Recipient.objects.bulk_create(
        [Recipient(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
        batch_size=1000,
        ignore_conflicts=True,
    )
    return Recipient.objects.count() - before


def recipients_generate(*, count: int, seed: int | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Insert `count` fake recipients with unique usernames and emails; return how many.

    Numbers continue after the highest id, so repeated runs do not collide; a row that
    still collides (a concurrent run, a hand-made username) is skipped and replaced.
    """
    rng = random.Random(seed)
    insert = _insert_postgres if connection.vendor == "postgresql" else _insert_generic
    created = 0
    next_number = (Recipient.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
    attempts_left = 5
    while created < count and attempts_left:
        size = min(GENERATE_CHUNK, count - created)
        rows = list(_fake_rows(size, next_number, rng))
        next_number += size
        with transaction.atomic():
            inserted = insert(rows)
        created += inserted
        if inserted < size:
            attempts_left -= 1
            next_number += count  # jump past whatever collided
        if progress:
            progress(inserted)
    return created
