from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from accounts.models import Account
from accounts.selectors import account_list
from inventory.models import Product
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


def order_references_existing(*, customer_id: int, product_ids: Iterable[int]) -> tuple[bool, set[int]]:
    """(whether the customer exists, which of the product ids exist), in one round trip.

    Plain SQL because this runs on every `POST /order`: the ORM's union of two querysets
    costs more to compile than the two queries it saves.
    """
    ids = sorted(set(product_ids))
    accounts, products = (connection.ops.quote_name(model._meta.db_table) for model in (Account, Product))
    sql = (
        # Table names from the models' metadata, quoted; every value is a bound parameter.
        f"SELECT 0, id FROM {accounts} WHERE id = %s UNION ALL "  # noqa: S608
        f"SELECT 1, id FROM {products} WHERE id IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_id, *ids])
        rows = cursor.fetchall()
    return (0, customer_id) in rows, {pk for kind, pk in rows if kind == 1}


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
