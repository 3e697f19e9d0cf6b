from inventory.events import STOCK_REJECTED, STOCK_RELEASED, STOCK_RESERVED, STOCK_SOLD, StockOutcome
from workers.events import Event
from workers.handling import handles

from .models import Order
from .services import StatusUpdate, order_status_apply

# What each inventory outcome means for the order.
STATUS_FOR_EVENT = {
    STOCK_RESERVED: Order.Status.PAYMENT_REQUIRED,
    STOCK_REJECTED: Order.Status.OUT_OF_STOCK,
    STOCK_SOLD: Order.Status.COMPLETED,
    STOCK_RELEASED: Order.Status.INSUFFICIENT_FUND,
}


@handles(*STATUS_FOR_EVENT)
def handle_inventory_outcomes(events: list[Event]) -> None:
    """inventory stream / group orders (`orders-status`): move each order along its saga."""
    outcomes = [StockOutcome.from_event(event) for event in events]
    order_status_apply(
        updates=[StatusUpdate(order_id=o.order_id, status=STATUS_FOR_EVENT[o.type], total=o.amount) for o in outcomes]
    )
