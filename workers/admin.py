from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .connection import UNAVAILABLE_ERRORS, get_redis
from .metrics import consumer_counters
from .models import OutboxEvent, ProcessedEvent
from .redis_epoch import epoch_status
from .registry import CONSUMERS, all_names
from .stats import all_stream_stats, consumer_overview
from .steering import consumer_pause, consumer_resume


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
            path(
                "streams/consumers/<str:name>/<str:action>/",
                self.admin_site.admin_view(self.steer_view),
                name="workers_consumer_steer",
            ),
            *super().get_urls(),
        ]

    def streams_view(self, request):
        try:
            streams, error = all_stream_stats(), None
        except UNAVAILABLE_ERRORS as exc:
            streams, error = [], f"Redis is unreachable: {exc}"
        consumers = [(spec, consumer_counters(spec.name)) for spec in CONSUMERS.values()] if not error else []
        overview = consumer_overview() if not error else []
        # The dead-letters page (admin/workers/deadletters/<stream>/), by path: it has its own URL conf.
        deadletters_root = reverse("admin:index") + "workers/deadletters/"
        epoch = epoch_status(None if error else get_redis())
        context = {
            **self.admin_site.each_context(request),
            "title": "Streams",
            "streams": streams,
            "consumers": consumers,
            "overview": overview,
            "deadletters_root": deadletters_root,
            "error": error,
            "redis_data_lost": epoch.describe() if epoch.alarm else "",
        }
        return TemplateResponse(request, "admin/workers/streams.html", context)

    def steer_view(self, request, name: str, action: str):
        """GET: ask to confirm pausing / resuming `name`; POST (CSRF): do it, back to the streams page."""
        if name not in all_names() or action not in ("pause", "resume"):
            raise Http404("no such consumer or action")
        if request.method == "POST":
            who = f"admin:{request.user.get_username()}"
            try:
                if action == "pause":
                    consumer_pause(name=name, by=who, reason=request.POST.get("reason", "")[:500])
                else:
                    consumer_resume(name=name, by=who)
            except UNAVAILABLE_ERRORS as exc:
                messages.error(request, f"Redis is unreachable, nothing changed: {exc}")
            else:
                messages.success(request, f"{name} {'paused' if action == 'pause' else 'resumed'}.")
            return HttpResponseRedirect(reverse("admin:workers_streams"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.capitalize()} {name}?",
            "name": name,
            "action": action,
        }
        return TemplateResponse(request, "admin/workers/consumer_steer.html", context)


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "group", "processed_at"]
    list_filter = ["group"]
    search_fields = ["event_id"]
    date_hierarchy = "processed_at"
