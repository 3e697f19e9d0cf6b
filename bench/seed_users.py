"""`python -m bench.seed_users`: 100,000 fake recipients (target ≤ 10 s).

Baseline, measured in the same run: the obvious implementation — one Faker call per
field per row and `bulk_create` in batches of 1,000 — on 5,000 rows, scaled to 100,000.
"""

import argparse
import time

from .comms_stack import CommsStack, emit, log

COUNT = 100_000
BASELINE_SAMPLE = 5_000


def naive_generate(count: int) -> None:
    from faker import Faker

    from users.models import Recipient

    fake = Faker()
    fake.seed_instance(1)
    rows = []
    for i in range(count):
        rows.append(
            Recipient(
                username=f"{fake.user_name()}{i}",
                name=fake.first_name(),
                last_name=fake.last_name(),
                email=f"{i}{fake.email()}",
                mobile=fake.phone_number()[:32],
                device_id=fake.uuid4(),
            )
        )
        if len(rows) == 1000:
            Recipient.objects.bulk_create(rows)
            rows = []
    Recipient.objects.bulk_create(rows)


def main() -> None:
    argparse.ArgumentParser(prog="python -m bench.seed_users", description=__doc__.splitlines()[0]).parse_args()
    stack = CommsStack()
    try:
        from users.models import Recipient
        from users.services import recipients_generate

        log(f"baseline: naive Faker + bulk_create on {BASELINE_SAMPLE} rows")
        started = time.perf_counter()
        naive_generate(BASELINE_SAMPLE)
        baseline = (time.perf_counter() - started) * COUNT / BASELINE_SAMPLE
        Recipient.objects.all().delete()

        log(f"seed_users: {COUNT} rows")
        started = time.perf_counter()
        created = recipients_generate(count=COUNT, seed=42)
        elapsed = time.perf_counter() - started
        assert created == COUNT == Recipient.objects.count()
        emit(
            {
                "benchmark": "seed_users",
                "rows": COUNT,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(COUNT / elapsed),
                "target_s": 10,
                "baseline": "Faker per field + bulk_create(1000), 5,000 rows scaled to 100,000",
                "baseline_seconds": round(baseline, 2),
                "ratio_baseline_over_figure": round(baseline / elapsed, 1),
            }
        )
    finally:
        stack.close()


if __name__ == "__main__":
    main()
