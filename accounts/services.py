"""Charging customers for reserved orders, in batches, never below a zero balance.

The accounts of a batch are locked in id order first (no deadlock between two
instances), the charge itself is a conditional update, and the database refuses a
negative balance. One Payment row per order makes a repeated request a no-op.
"""

from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workers.events import Event
from workers.publish import publish_on_commit

from .events import PaymentResult
from .models import Account, Payment

SEED_ACCOUNTS = [
    (101, "Anthony", 1000),
    (102, "Becky", 100),
    (103, "Carol", 1000),
]


class BalanceChanged(Exception):
    """A locked account's balance changed under us: roll back and let the consumer retry."""


@dataclass(frozen=True)
class ChargeRequest:
    order_id: int
    customer_id: int
    amount: int


@transaction.atomic
def payment_charge(*, requests: list[ChargeRequest]) -> dict[int, str]:
    """Charge each order's amount or refuse it; return order id → payment status.

    Emits `accounts.payment.charged` or `accounts.payment.refused` per new payment.
    """
    existing = set(
        Payment.objects.filter(order_id__in=[r.order_id for r in requests]).values_list("order_id", flat=True)
    )
    todo: dict[int, ChargeRequest] = {}
    for request in requests:
        if request.order_id not in existing:
            todo.setdefault(request.order_id, request)
    if not todo:
        return {}
    # FOR NO KEY UPDATE: placing an order (a foreign key to the account) takes KEY SHARE
    # on the account row; a plain FOR UPDATE would make POST /order wait for this batch.
    accounts = {
        a.pk: a
        for a in Account.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted({r.customer_id for r in todo.values()}))
        .order_by("pk")
    }
    balance = {pk: account.balance for pk, account in accounts.items()}
    spent: Counter[int] = Counter()
    payments: list[Payment] = []
    events: list[Event] = []
    for request in todo.values():
        charged = request.customer_id in accounts and balance[request.customer_id] >= request.amount
        if charged:
            balance[request.customer_id] -= request.amount
            spent[request.customer_id] += request.amount
        status = Payment.Status.CHARGED if charged else Payment.Status.REFUSED
        payments.append(
            Payment(
                order_id=request.order_id,
                account_id=request.customer_id if request.customer_id in accounts else None,
                amount=request.amount,
                status=status,
            )
        )
        events.append(
            PaymentResult(
                order_id=request.order_id,
                customer_id=request.customer_id,
                amount=request.amount,
                balance=balance.get(request.customer_id),
                charged=charged,
            ).event()
        )
    now = timezone.now()
    for pk in sorted(spent):
        updated = Account.objects.filter(pk=pk, balance__gte=spent[pk]).update(
            balance=F("balance") - spent[pk], updated_at=now
        )
        if updated != 1:
            raise BalanceChanged(f"account {pk}: balance below {spent[pk]} while locked")
    Payment.objects.bulk_create(payments)
    publish_on_commit("accounts", events)
    return {p.order_id: p.status for p in payments}


@transaction.atomic
def accounts_reset_to_seed() -> None:
    """Put the seed's accounts back with their seed balances (emails are kept)."""
    for pk, name, balance in SEED_ACCOUNTS:
        Account.objects.update_or_create(id=pk, defaults={"name": name, "balance": balance})


def payment_outcome_events(*, order_ids: list[int]) -> dict[int, Event]:
    """The `accounts.payment.*` event of each order's payment, rebuilt with its original id
    (Event.keyed): to re-drive a saga whose event Redis lost. `balance` is the balance
    now, not at the charge (the settling step reads only the order and the outcome)."""
    events: dict[int, Event] = {}
    for payment in Payment.objects.filter(order_id__in=order_ids).select_related("account"):
        events[payment.order_id] = PaymentResult(
            order_id=payment.order_id,
            customer_id=payment.account_id,
            amount=payment.amount,
            balance=payment.account.balance if payment.account else None,
            charged=payment.status == Payment.Status.CHARGED,
        ).event()
    return events
