from django.db import models


class Account(models.Model):
    """A customer with a balance (seed 004's account service). Ids are the seed's (101, 102…)."""

    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, help_text="where order outcomes are emailed, if set")
    balance = models.BigIntegerField(help_text="whole currency units, never below zero")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(balance__gte=0), name="account_balance_not_negative")]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class Payment(models.Model):
    """The charge (or refusal) for one order: at most one per order, so a charge is never taken twice."""

    class Status(models.TextChoices):
        CHARGED = "charged"
        REFUSED = "refused"

    order_id = models.BigIntegerField(unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments", null=True)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.status} {self.amount}"
