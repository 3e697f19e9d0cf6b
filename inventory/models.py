from django.db import models


class Product(models.Model):
    """A product and its stock (seed 004's inventory service). Ids are the seed's (201, 202…)."""

    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(max_length=200)
    price = models.BigIntegerField(help_text="whole currency units")
    stock = models.BigIntegerField(help_text="units on hand, never below zero")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class Reservation(models.Model):
    """Stock held for one order: at most one per order, so stock is never reserved or released twice.

    reserved → sold (the charge went through) or → released (it was refused);
    rejected when some line could not be reserved (nothing was taken).
    """

    class Status(models.TextChoices):
        RESERVED = "reserved"
        REJECTED = "rejected"
        SOLD = "sold"
        RELEASED = "released"

    order_id = models.BigIntegerField(unique=True)
    customer_id = models.BigIntegerField()
    lines = models.JSONField(help_text='{"<product id>": quantity}')
    amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.status}"
