from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.order_by("id")


def product_ids_existing(ids: Iterable[int]) -> set[int]:
    return set(Product.objects.filter(pk__in=set(ids)).values_list("pk", flat=True))
