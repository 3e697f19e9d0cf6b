from dataclasses import replace

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from . import deadletters
from .connection import UNAVAILABLE_ERRORS, get_redis
from .metrics import consumer_counters
from .models import OperatorAction, OutboxEvent, ProcessedEvent
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
            *dead_letter_urls(self.admin_site),
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
        epoch = epoch_status(None if error else get_redis())
        context = {
            **self.admin_site.each_context(request),
            "title": "Streams",
            "streams": streams,
            "consumers": consumers,
            "overview": overview,
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


# -- dead letters: list, one entry, and redrive / purge behind a confirmation page ---------
class DeadLetterFilterForm(forms.Form):
    consumer = forms.CharField(required=False, max_length=200)
    error = forms.CharField(required=False, max_length=2000, label="error contains")
    older_than = forms.FloatField(required=False, min_value=0, label="older than (s)")
    max_id = forms.RegexField(deadletters.ENTRY_ID.pattern, required=False, widget=forms.HiddenInput)

    def to_filter(self) -> deadletters.DeadLetterFilter:
        data = self.cleaned_data
        return deadletters.DeadLetterFilter(
            consumer=data["consumer"],
            error_contains=data["error"],
            older_than_s=data["older_than"],
            max_id=data["max_id"],
        )


class EntryIdsField(forms.Field):
    """The checked boxes: DLQ entry ids (their form is checked by the service)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        return [str(v) for v in value or []]


class DeadLetterActionForm(DeadLetterFilterForm):
    """The list's buttons: redrive or purge, the checked entries or every match of the filter."""

    do = forms.ChoiceField(
        choices=[(f"{a}-{s}", f"{a} {s}") for a in ("redrive", "purge") for s in ("selected", "matching")]
    )
    ids = EntryIdsField(required=False)

    def clean(self):
        data = super().clean() or {}
        if data.get("do", "").endswith("-selected") and not data.get("ids"):
            raise forms.ValidationError("Select at least one dead letter.")
        return data

    @property
    def action(self) -> str:
        return self.cleaned_data["do"].split("-")[0]

    def selection(self) -> dict:
        if self.cleaned_data["do"].endswith("-selected"):
            return {"ids": self.cleaned_data["ids"]}
        return {"wanted": self.to_filter()}


def dead_letter_urls(site: admin.AdminSite) -> list:
    return [
        path("streams/<str:stream>/dead-letters/", site.admin_view(dead_letters_view), name="workers_dead_letters"),
        path(
            "streams/<str:stream>/dead-letters/confirm/",
            site.admin_view(require_POST(dead_letters_confirm_view)),
            name="workers_dead_letters_confirm",
        ),
        path(
            "streams/<str:stream>/dead-letters/<str:entry_id>/",
            site.admin_view(dead_letter_view),
            name="workers_dead_letter",
        ),
    ]


def _context(request: HttpRequest, stream: str, title: str, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "stream": stream,
        "streams_url": reverse("admin:workers_streams"),
        "list_url": reverse("admin:workers_dead_letters", args=[stream]),
        "confirm_url": reverse("admin:workers_dead_letters_confirm", args=[stream]),
        **extra,
    }


def _known(stream: str) -> None:
    try:
        deadletters.dead_letter_stream_ensure(stream)
    except deadletters.DeadLetterStreamUnknown as exc:
        raise Http404(str(exc)) from exc


def dead_letters_view(request: HttpRequest, stream: str) -> HttpResponse:
    _known(stream)
    form = DeadLetterFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        letters, hidden = [], []  # a bad filter matches nothing: "all matching" must never mean all
    else:
        wanted = form.to_filter() if form.is_bound else deadletters.DeadLetterFilter()
        letters = deadletters.dead_letter_list(stream=stream, wanted=wanted)
        hidden = [(k, v) for k, v in form.cleaned_data.items() if v not in ("", None)] if form.is_bound else []
    page = Paginator(letters, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = _context(
        request,
        stream,
        f"Dead letters of {stream}",
        form=form,
        page=page,
        matching=len(letters),
        total=deadletters.dead_letter_count(stream=stream),
        query=query.urlencode(),
        filter_fields=hidden,
    )
    return TemplateResponse(request, "admin/workers/deadletters.html", context)


def dead_letter_view(request: HttpRequest, stream: str, entry_id: str) -> HttpResponse:
    _known(stream)
    letter = deadletters.dead_letter_get(stream=stream, entry_id=entry_id)
    if letter is None:
        raise Http404(f"No dead letter {entry_id} in {stream}.")
    context = _context(request, stream, f"Dead letter {entry_id}", letter=letter)
    return TemplateResponse(request, "admin/workers/deadletter_detail.html", context)


def dead_letters_confirm_view(request: HttpRequest, stream: str) -> HttpResponse:
    """First POST (from the list or an entry): show what would be acted on. Second POST
    (with `confirmed`): act, through the service, and go back to the list."""
    _known(stream)
    form = DeadLetterActionForm(request.POST)
    if not form.is_valid():
        problems = [f"{name}: {e}" if name != "__all__" else str(e) for name, errs in form.errors.items() for e in errs]
        messages.warning(request, " ".join(problems))
        return HttpResponseRedirect(reverse("admin:workers_dead_letters", args=[stream]))
    action = form.action
    selection = form.selection()
    if request.POST.get("confirmed") == "yes":
        service = deadletters.dead_letters_redrive if action == "redrive" else deadletters.dead_letters_purge
        try:
            result = service(stream=stream, actor=request.user.get_username(), **selection)
        except deadletters.DeadLetterSelectionInvalid as exc:
            messages.warning(request, str(exc))
        else:
            verb = "Redrove" if action == "redrive" else "Purged"
            gone = result.requested - len(result.done)
            note = f" ({gone} were already gone)" if gone else ""
            messages.success(request, f"{verb} {len(result.done)} dead letter(s) of {stream}{note}.")
        return HttpResponseRedirect(reverse("admin:workers_dead_letters", args=[stream]))
    if "ids" in selection:
        found = [deadletters.dead_letter_get(stream=stream, entry_id=i) for i in selection["ids"]]
        letters = [letter for letter in found if letter is not None]
        wanted = None
    else:
        letters = deadletters.dead_letter_list(stream=stream, wanted=selection["wanted"])
        # the second POST acts on what this page shows, not on dead letters that arrive meanwhile
        wanted = selection["wanted"]
        if letters:
            wanted = replace(wanted, max_id=letters[0].id)
    context = _context(
        request,
        stream,
        f"{action.capitalize()} {len(letters)} dead letter(s) of {stream}?",
        action=action,
        do=form.cleaned_data["do"],
        letters=letters[:200],
        count=len(letters),
        wanted=wanted,
    )
    return TemplateResponse(request, "admin/workers/deadletters_confirm.html", context)


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    """The audit log of redrives and purges: read-only, written only by workers.deadletters."""

    list_display = ["at", "actor", "stream", "action", "requested", "affected", "selection"]
    list_filter = ["action", "stream"]
    search_fields = ["actor", "stream"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
