from django.conf import settings
from django.db import models


class Order(models.Model):
    """An order passing through the saga: pending → payment-required → a final status."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PAYMENT_REQUIRED = "payment-required"
        COMPLETED = "completed"
        OUT_OF_STOCK = "out-of-stock"
        INSUFFICIENT_FUND = "insufficient-fund"

    FINAL_STATUSES = (Status.COMPLETED, Status.OUT_OF_STOCK, Status.INSUFFICIENT_FUND)

    customer = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="orders")
    product_ids = models.JSONField(help_text="product ids as placed, one per unit")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    total = models.BigIntegerField(null=True, blank=True, help_text="set once inventory priced the order")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="order_idempotency_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class CustomerMessage(models.Model):
    """The message a customer gets about an order's outcome (the seed's msg service)."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="message")
    customer = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="messages")
    status = models.CharField(max_length=20, choices=Order.Status.choices)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"to {self.customer_id}: {self.text[:60]}"
