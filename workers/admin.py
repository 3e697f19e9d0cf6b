from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from .connection import UNAVAILABLE_ERRORS, get_redis
from .metrics import consumer_counters
from .models import OutboxEvent, ProcessedEvent
from .redis_epoch import epoch_status
from .registry import CONSUMERS
from .stats import all_stream_stats


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ["id", "stream", "event_type", "event_id", "created_at", "attempts", "last_error"]
    list_filter = ["stream"]
    search_fields = ["event_id", "stream"]
    readonly_fields = ["stream", "event_id", "fields", "created_at", "attempts", "last_error"]

    @admin.display(description="type")
    def event_type(self, obj: OutboxEvent) -> str:
        return obj.fields.get("type", "")

    def get_urls(self):
        # The streams dashboard hangs off this admin so it shares its permissions.
        return [
            path("streams/", self.admin_site.admin_view(self.streams_view), name="workers_streams"),
            *super().get_urls(),
        ]

    def streams_view(self, request):
        try:
            streams, error = all_stream_stats(), None
        except UNAVAILABLE_ERRORS as exc:
            streams, error = [], f"Redis is unreachable: {exc}"
        consumers = [(spec, consumer_counters(spec.name)) for spec in CONSUMERS.values()] if not error else []
        epoch = epoch_status(None if error else get_redis())
        context = {
            **self.admin_site.each_context(request),
            "title": "Streams",
            "streams": streams,
            "consumers": consumers,
            "error": error,
            "redis_data_lost": epoch.describe() if epoch.alarm else "",
        }
        return TemplateResponse(request, "admin/workers/streams.html", context)


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "group", "processed_at"]
    list_filter = ["group"]
    search_fields = ["event_id"]
    date_hierarchy = "processed_at"
