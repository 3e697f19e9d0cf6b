from accounts.events import PAYMENT_CHARGED, PAYMENT_REFUSED, PaymentResult
from orders.events import ORDER_PLACED, OrderPlaced
from workers.events import Event
from workers.handling import handles

from .services import OrderToReserve, PaymentOutcome, stock_reserve, stock_settle


@handles(ORDER_PLACED)
def handle_orders_placed(events: list[Event]) -> None:
    """orders stream / group inventory (`inventory-reserve`): reserve each new order's stock."""
    placed = [OrderPlaced.from_event(event) for event in events]
    stock_reserve(
        orders=[OrderToReserve(order_id=o.order_id, customer_id=o.customer_id, lines=o.lines) for o in placed]
    )


@handles(PAYMENT_CHARGED, PAYMENT_REFUSED)
def handle_payment_outcomes(events: list[Event]) -> None:
    """accounts stream / group inventory (`inventory-settle`): sell or release each reservation."""
    results = [PaymentResult.from_event(event) for event in events]
    stock_settle(outcomes=[PaymentOutcome(order_id=r.order_id, charged=r.charged) for r in results])
