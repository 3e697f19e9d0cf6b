from workers.events import Event
from workers.runner import PermanentError

from .services import OrderToReserve, PaymentOutcome, stock_reserve, stock_settle

ORDER_PLACED = "orders.order.placed"
PAYMENT_CHARGED = "accounts.payment.charged"
PAYMENT_REFUSED = "accounts.payment.refused"


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PermanentError(f"{what} is not an integer: {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise PermanentError(f"{what} is not an integer: {value!r}") from None
    if number <= 0:
        raise PermanentError(f"{what} must be positive: {value!r}")
    return number


def _order_to_reserve(event: Event) -> OrderToReserve:
    payload = event.payload
    lines = payload.get("lines")
    if not isinstance(lines, dict) or not lines:
        raise PermanentError(f"order event {event.id} has no lines: {payload!r}")
    return OrderToReserve(
        order_id=_positive_int(payload.get("order_id"), "order_id"),
        customer_id=_positive_int(payload.get("customer_id"), "customer_id"),
        lines={_positive_int(pid, "product id"): _positive_int(qty, "quantity") for pid, qty in lines.items()},
    )


def handle_orders_placed(events: list[Event]) -> None:
    """orders stream / group inventory (`inventory-reserve`): reserve each new order's stock."""
    orders = [_order_to_reserve(event) for event in events if event.type == ORDER_PLACED]
    if orders:
        stock_reserve(orders=orders)


def handle_payment_outcomes(events: list[Event]) -> None:
    """accounts stream / group inventory (`inventory-settle`): sell or release each reservation."""
    outcomes = [
        PaymentOutcome(
            order_id=_positive_int(event.payload.get("order_id"), "order_id"),
            charged=event.type == PAYMENT_CHARGED,
        )
        for event in events
        if event.type in (PAYMENT_CHARGED, PAYMENT_REFUSED)
    ]
    if outcomes:
        stock_settle(outcomes=outcomes)
