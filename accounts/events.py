"""The events the accounts app emits on the `accounts` stream: their types and payloads."""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import payload_int

PAYMENT_CHARGED = "accounts.payment.charged"
PAYMENT_REFUSED = "accounts.payment.refused"
EVENT_TYPES = (PAYMENT_CHARGED, PAYMENT_REFUSED)


@dataclass(frozen=True)
class PaymentResult:
    order_id: int
    customer_id: int | None  # None only in a re-driven event of an unknown account
    amount: int
    balance: int | None  # the customer's balance after the step; None for an unknown account
    charged: bool

    def event(self) -> Event:
        payload = {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "amount": self.amount,
            "balance": self.balance,
        }
        return Event.keyed(PAYMENT_CHARGED if self.charged else PAYMENT_REFUSED, self.order_id, payload)

    @classmethod
    def from_event(cls, event: Event) -> "PaymentResult":
        payload = event.payload
        balance = payload.get("balance")
        return cls(
            order_id=payload_int(payload, "order_id"),
            customer_id=payload_int(payload, "customer_id") if payload.get("customer_id") is not None else None,
            amount=payload_int(payload, "amount"),
            balance=payload_int(payload, "balance") if balance is not None else None,
            charged=event.type == PAYMENT_CHARGED,
        )
