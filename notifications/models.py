from django.db import models


class NotificationMessage(models.Model):
    """A seed-001 notification message, stored by the `notifications` consumer."""

    event_id = models.UUIDField(unique=True, help_text="envelope id; makes redelivery harmless")
    message_id = models.BigIntegerField(db_index=True, help_text="the seed's integer id")
    description = models.TextField()
    timestamp = models.DateTimeField(help_text="when the producer accepted it")
    stream_id = models.CharField(max_length=40, help_text="entry id in NotificationStream")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["-timestamp", "-id"], name="notifmsg_newest_first")]

    def __str__(self) -> str:
        return f"#{self.message_id} {self.description[:60]}"
