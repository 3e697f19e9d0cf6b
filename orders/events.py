"""The events the orders app emits on the `orders` stream: their types and payloads.

Consumers import the types and decode payloads with `from_event`, so a renamed type or a
changed shape breaks at import or dead-letters, instead of being silently skipped.
"""

from dataclasses import dataclass

from workers.events import Event
from workers.handling import PermanentError, as_int, payload_int

ORDER_PLACED = "orders.order.placed"
ORDER_FINALIZED = "orders.order.finalized"
EVENT_TYPES = (ORDER_PLACED, ORDER_FINALIZED)


@dataclass(frozen=True)
class OrderPlaced:
    order_id: int
    customer_id: int
    lines: dict[int, int]  # product id → quantity

    def event(self) -> Event:
        """Keyed by the order: a re-drive of the same order publishes the same event id."""
        payload = {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "lines": {str(pid): qty for pid, qty in self.lines.items()},
        }
        return Event.keyed(ORDER_PLACED, self.order_id, payload)

    @classmethod
    def from_event(cls, event: Event) -> "OrderPlaced":
        payload = event.payload
        lines = payload.get("lines")
        if not isinstance(lines, dict) or not lines:
            raise PermanentError(f"order event {event.id} has no lines: {payload!r}")
        return cls(
            order_id=payload_int(payload, "order_id", minimum=1),
            customer_id=payload_int(payload, "customer_id", minimum=1),
            lines={
                as_int(pid, "product id", minimum=1): as_int(qty, "quantity", minimum=1) for pid, qty in lines.items()
            },
        )


@dataclass(frozen=True)
class OrderFinalized:
    order_id: int
    customer_id: int
    customer_name: str
    customer_email: str
    status: str
    total: int | None
    message: str

    def event(self) -> Event:
        return Event.keyed(ORDER_FINALIZED, self.order_id, self.__dict__.copy())

    @classmethod
    def from_event(cls, event: Event) -> "OrderFinalized":
        payload = event.payload
        if not isinstance(payload.get("status"), str):
            raise PermanentError(f"not a finalized order: {payload!r}")
        total = payload.get("total")
        return cls(
            order_id=payload_int(payload, "order_id"),
            customer_id=payload_int(payload, "customer_id"),
            customer_name=str(payload.get("customer_name") or ""),
            customer_email=str(payload.get("customer_email") or ""),
            status=payload["status"],
            total=payload_int(payload, "total") if total is not None else None,
            message=str(payload.get("message", "")),
        )
