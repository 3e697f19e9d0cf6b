from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from accounts.selectors import account_list
from inventory.selectors import product_list

from .models import Order


def order_list(*, customer_id: int | None = None, status: str | None = None) -> QuerySet[Order]:
    orders = Order.objects.order_by("-id")
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    if status:
        orders = orders.filter(status=status)
    return orders


def order_get(*, order_id: int) -> Order | None:
    return Order.objects.select_related("message").filter(pk=order_id).first()


def shop_report() -> dict[str, list[dict[str, Any]]]:
    """Seed 004's `GET /report`: accounts, inventory and the latest orders, numbers as numbers."""
    latest = order_list()[: settings.ORDERS_REPORT_MAX_ORDERS]
    return {
        "accounts": [{"id": str(a.pk), "name": a.name, "balance": a.balance} for a in account_list()],
        "inventory": [{"id": str(p.pk), "name": p.name, "price": p.price, "stock": p.stock} for p in product_list()],
        "orders": [
            {
                "id": str(o.pk),
                "product_ids": [str(pid) for pid in o.product_ids],
                "customer_id": str(o.customer_id),
                "status": o.status,
                "total": o.total,
            }
            for o in latest
        ],
    }
