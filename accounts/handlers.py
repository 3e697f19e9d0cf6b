from workers.events import Event
from workers.runner import PermanentError

from .services import ChargeRequest, payment_charge

STOCK_RESERVED = "inventory.stock.reserved"


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PermanentError(f"{what} is not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise PermanentError(f"{what} is not an integer: {value!r}") from None


def _charge_request(event: Event) -> ChargeRequest:
    payload = event.payload
    amount = _int(payload.get("amount"), "amount")
    if amount < 0:
        raise PermanentError(f"negative amount in {event.id}: {amount}")
    return ChargeRequest(
        order_id=_int(payload.get("order_id"), "order_id"),
        customer_id=_int(payload.get("customer_id"), "customer_id"),
        amount=amount,
    )


def handle_stock_reserved(events: list[Event]) -> None:
    """inventory stream / group accounts (`accounts-charge`): charge each reserved order."""
    requests = [_charge_request(event) for event in events if event.type == STOCK_RESERVED]
    if requests:
        payment_charge(requests=requests)
