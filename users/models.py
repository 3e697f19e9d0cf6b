from django.db import models


class Recipient(models.Model):
    """A person campaigns and notifications are sent to (seed 002's user service `User`).

    Not a login: operators and API callers are Django's `auth.User`. The API keeps the
    seed's field names (`lastName`, `deviceId`).
    """

    username = models.CharField(max_length=150, unique=True)
    name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    # NULL (not "") when unknown, so the unique index allows many recipients without one.
    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    mobile = models.CharField(max_length=32, blank=True)
    device_id = models.CharField(max_length=64, blank=True)
    opted_out = models.BooleanField(default=False, help_text="never send campaigns to this recipient")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "recipient"
        verbose_name_plural = "recipients"

    def __str__(self) -> str:
        return f"{self.username} <{self.email or 'no email'}>"
