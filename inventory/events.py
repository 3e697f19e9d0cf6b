"""The events the inventory app emits on the `inventory` stream: their types and payloads."""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import payload_int

STOCK_RESERVED = "inventory.stock.reserved"
STOCK_REJECTED = "inventory.stock.rejected"
STOCK_SOLD = "inventory.stock.sold"
STOCK_RELEASED = "inventory.stock.released"
EVENT_TYPES = (STOCK_RESERVED, STOCK_REJECTED, STOCK_SOLD, STOCK_RELEASED)


@dataclass(frozen=True)
class StockOutcome:
    """The outcome of one order's reservation step. `amount` is the order's total (not
    set on a rejection); `lines` only on a reservation; `reason` only on a rejection."""

    type: str
    order_id: int
    customer_id: int
    amount: int | None = None
    lines: dict[str, int] | None = None
    reason: str | None = None

    def event(self) -> Event:
        payload: dict = {"order_id": self.order_id, "customer_id": self.customer_id}
        if self.lines is not None:
            payload["lines"] = self.lines
        if self.amount is not None:
            payload["amount"] = self.amount
        if self.reason is not None:
            payload["reason"] = self.reason
        return Event.keyed(self.type, self.order_id, payload)

    @classmethod
    def from_event(cls, event: Event) -> "StockOutcome":
        payload = event.payload
        amount = payload.get("amount")
        return cls(
            type=event.type,
            order_id=payload_int(payload, "order_id"),
            customer_id=payload_int(payload, "customer_id"),
            amount=payload_int(payload, "amount", minimum=0) if amount is not None else None,
            lines=payload.get("lines"),
            reason=payload.get("reason"),
        )
