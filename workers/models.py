from django.db import models


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it announces.

    Sent to Redis right after commit and then deleted; whatever is still here after
    OUTBOX_RELAY_GRACE_S (Redis was down, the process died) is sent by `relay_outbox`.
    """

    stream = models.CharField(max_length=200)
    event_id = models.UUIDField()
    fields = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.fields.get('type', '?')} → {self.stream}"


class ProcessedEvent(models.Model):
    """The inbox: which event ids a consumer group has already applied.

    Written in the same transaction as the handler's own writes, so a redelivered entry
    is recognised and skipped (exactly-once effects on the database).
    """

    group = models.CharField(max_length=200)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "event_id"], name="processed_event_unique")]
        indexes = [models.Index(fields=["processed_at"])]

    def __str__(self) -> str:
        return f"{self.group}:{self.event_id}"


class RedisEpoch(models.Model):
    """The database's memory of the Redis it works with (one row).

    `epoch` is also written to Redis (`commsplatform:redis-epoch`) when the first consumer
    group is created. A Redis that lost its data (restarted empty, flushed, failed over to
    an empty replica) no longer has the marker while this row says it did: that is a loss,
    counted here (the database survives it) and reported by /metrics, /readyz and the
    admin streams page. See workers.redis_epoch.
    """

    epoch = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    losses = models.PositiveIntegerField(default=0)
    last_loss_at = models.DateTimeField(null=True, blank=True)
    last_loss_detected_by = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "Redis epoch"

    def __str__(self) -> str:
        return self.epoch


class OperatorAction(models.Model):
    """The audit log of what operators did to dead letters: who, when, on which stream,
    what, how many, and which entries (the ids or the filter). Written by the service
    that acted (workers.deadletters), in the same call, whichever front end called it."""

    class Action(models.TextChoices):
        REDRIVE = "redrive"
        PURGE = "purge"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text='a username, or "cli:<os user>" for manage.py')
    stream = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=Action.choices)
    selection = models.JSONField(help_text='{"ids": [...]} or {"filter": {...}}')
    requested = models.PositiveIntegerField(help_text="ids asked for, or entries the filter matched")
    affected = models.PositiveIntegerField(help_text="entries redriven or purged (the others were already gone)")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "operator action"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.affected} on {self.stream}"


class ConsumerPause(models.Model):
    """Whether an operator paused a registry entry (workers.steering), and who last changed it.

    The database is the source of truth; Redis holds a copy (`workers:paused:<name>`) that
    every loop reads cheaply. A copy missing from Redis (it lost its data) is written back
    from this row, so a lost Redis never silently resumes a paused consumer.
    """

    name = models.CharField(max_length=200, unique=True)
    paused = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.CharField(max_length=200, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "consumer pause"

    def __str__(self) -> str:
        return f"{self.name}: {'paused' if self.paused else 'running'}"
