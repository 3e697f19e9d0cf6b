from inventory.events import STOCK_RESERVED, StockOutcome
from workers.events import Event
from workers.handling import PermanentError, handles

from .services import ChargeRequest, payment_charge


def _charge_request(event: Event) -> ChargeRequest:
    reserved = StockOutcome.from_event(event)
    if reserved.amount is None:
        raise PermanentError(f"reservation {event.id} has no amount: {event.payload!r}")
    return ChargeRequest(order_id=reserved.order_id, customer_id=reserved.customer_id, amount=reserved.amount)


@handles(STOCK_RESERVED)
def handle_stock_reserved(events: list[Event]) -> None:
    """inventory stream / group accounts (`accounts-charge`): charge each reserved order."""
    payment_charge(requests=[_charge_request(event) for event in events])
