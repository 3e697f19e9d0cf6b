from workers.events import Event
from workers.runner import PermanentError

from .models import Order
from .services import StatusUpdate, order_status_apply

# What each inventory outcome means for the order.
STATUS_FOR_EVENT = {
    "inventory.stock.reserved": Order.Status.PAYMENT_REQUIRED,
    "inventory.stock.rejected": Order.Status.OUT_OF_STOCK,
    "inventory.stock.sold": Order.Status.COMPLETED,
    "inventory.stock.released": Order.Status.INSUFFICIENT_FUND,
}


def _status_update(event: Event) -> StatusUpdate:
    payload = event.payload
    try:
        order_id = int(payload["order_id"])
        total = int(payload["amount"]) if payload.get("amount") is not None else None
    except (KeyError, TypeError, ValueError):
        raise PermanentError(f"not an inventory outcome: {payload!r}") from None
    return StatusUpdate(order_id=order_id, status=STATUS_FOR_EVENT[event.type], total=total)


def handle_inventory_outcomes(events: list[Event]) -> None:
    """inventory stream / group orders (`orders-status`): move each order along its saga."""
    updates = [_status_update(event) for event in events if event.type in STATUS_FOR_EVENT]
    if updates:
        order_status_apply(updates=updates)
