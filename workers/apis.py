from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.errors import ServiceUnavailable
from commsplatform.pagination import PageNumberPagination, paginated_response

from .connection import UNAVAILABLE_ERRORS
from .deadletters import (
    ENTRY_ID,
    DeadLetterFilter,
    DeadLetterSelectionInvalid,
    DeadLetterStreamUnknown,
    dead_letter_get,
    dead_letter_list,
    dead_letters_purge,
    dead_letters_redrive,
)
from .metrics import consumer_counters
from .registry import CONSUMERS, all_names
from .stats import all_stream_stats, consumer_overview
from .steering import PauseState, consumer_pause, consumer_resume


class StreamListApi(APIView):
    """Length, groups, consumers, pending, lag and dead letters of every stream (staff)."""

    permission_classes = [IsAdminUser]

    class GroupSerializer(serializers.Serializer):
        name = serializers.CharField()
        consumers = serializers.IntegerField()
        pending = serializers.IntegerField()
        lag = serializers.IntegerField(allow_null=True)
        last_delivered_id = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        stream = serializers.CharField()
        length = serializers.IntegerField()
        dead_letters = serializers.IntegerField()
        first_entry_id = serializers.CharField(allow_null=True)
        last_entry_id = serializers.CharField(allow_null=True)
        groups = serializers.ListField(child=serializers.DictField())
        consumers = serializers.DictField(help_text="counters of the registered consumers of this stream")

    @extend_schema(responses=OutputSerializer(many=True), operation_id="streams_list")
    def get(self, request):
        try:
            stats = all_stream_stats()
            rows = []
            for item in stats:
                row = item.as_dict()
                row["consumers"] = {
                    spec.name: consumer_counters(spec.name)
                    for spec in CONSUMERS.values()
                    if spec.stream_name == item.stream
                }
                rows.append(row)
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailable(f"Redis is unreachable: {exc}") from exc
        return Response(self.OutputSerializer(rows, many=True).data)


# -- dead letters (workers.deadletters) ---------------------------------------------------
def _dead_letter_errors(call):
    """Run a deadletters selector or service; its refusals become the JSON 4xx/503."""
    try:
        return call()
    except DeadLetterStreamUnknown as exc:
        raise exceptions.NotFound(str(exc)) from exc
    except DeadLetterSelectionInvalid as exc:
        raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc
    except UNAVAILABLE_ERRORS as exc:
        raise ServiceUnavailable(f"Redis is unreachable: {exc}") from exc


class DeadLetterFilterSerializer(serializers.Serializer):
    consumer = serializers.CharField(required=False, max_length=200, help_text="the consumer that gave up")
    error_contains = serializers.CharField(required=False, max_length=2000, help_text="text in the error (any case)")
    older_than_s = serializers.FloatField(
        required=False, min_value=0, max_value=10**9, help_text="dead-lettered at least this many seconds ago"
    )

    def to_filter(self) -> DeadLetterFilter:
        return DeadLetterFilter(**self.validated_data)


class DeadLetterOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="the entry id in <stream>:dlq")
    stream = serializers.CharField(help_text="the stream it came from")
    original_entry_id = serializers.CharField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    payload = serializers.JSONField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    consumer = serializers.CharField()
    group = serializers.CharField()
    dead_lettered_at = serializers.DateTimeField()
    redrive_count = serializers.IntegerField(help_text="how often it was redriven before it failed again")


class DeadLetterListApi(APIView):
    """Dead letters of one stream, newest first, filtered by consumer, error text, age (staff)."""

    permission_classes = [IsAdminUser]
    pagination_class = PageNumberPagination

    @extend_schema(
        parameters=[DeadLetterFilterSerializer],
        responses=DeadLetterOutputSerializer(many=True),
        operation_id="dead_letters_list",
    )
    def get(self, request, stream: str):
        query = DeadLetterFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        letters = _dead_letter_errors(lambda: dead_letter_list(stream=stream, wanted=query.to_filter()))
        return paginated_response(request, self, letters, DeadLetterOutputSerializer)


class DeadLetterDetailApi(APIView):
    """One dead letter, with the entry's fields as they were on the stream (staff)."""

    permission_classes = [IsAdminUser]

    class OutputSerializer(DeadLetterOutputSerializer):
        entry = serializers.DictField(
            source="fields", child=serializers.CharField(), help_text="the entry's fields as they were on the stream"
        )

    @extend_schema(responses=OutputSerializer, operation_id="dead_letters_retrieve")
    def get(self, request, stream: str, entry_id: str):
        letter = _dead_letter_errors(lambda: dead_letter_get(stream=stream, entry_id=entry_id))
        if letter is None:
            raise exceptions.NotFound(f"No dead letter {entry_id} in {stream}.")
        return Response(self.OutputSerializer(letter).data)


class DeadLetterSelectionSerializer(DeadLetterFilterSerializer):
    ids = serializers.ListField(
        child=serializers.RegexField(ENTRY_ID.pattern, max_length=41),
        required=False,
        allow_empty=False,
        max_length=10_000,
        help_text="these dead letters (their ids in <stream>:dlq)",
    )
    all = serializers.BooleanField(
        required=False, default=False, help_text="every dead letter matching consumer, error_contains, older_than_s"
    )

    def validate(self, data):
        criteria = {"consumer", "error_contains", "older_than_s"} & set(data)
        if "ids" in data and (data["all"] or criteria):
            raise serializers.ValidationError('Give either "ids" or a filter with "all": true, not both.')
        if "ids" not in data and not data["all"]:
            raise serializers.ValidationError('Give "ids", or a filter with "all": true (every match).')
        return data

    def selection(self) -> dict:
        data = self.validated_data
        if "ids" in data:
            return {"ids": data["ids"]}
        return {"wanted": DeadLetterFilter(**{k: v for k, v in data.items() if k not in ("ids", "all")})}


class DeadLetterActionOutputSerializer(serializers.Serializer):
    action = serializers.CharField()
    stream = serializers.CharField()
    requested = serializers.IntegerField(help_text="ids given, or dead letters the filter matched")
    done = serializers.IntegerField(help_text="moved or deleted by this call (others were already gone)")
    ids = serializers.ListField(child=serializers.CharField(), help_text="the dead letters acted on")
    audit_id = serializers.IntegerField(help_text="the OperatorAction row that records it")


def _action_response(result) -> Response:
    body = {
        "action": result.action,
        "stream": result.stream,
        "requested": result.requested,
        "done": len(result.done),
        "ids": result.done,
        "audit_id": result.audit_id,
    }
    return Response(DeadLetterActionOutputSerializer(body).data)


def _dead_letter_action(request, stream: str, action) -> Response:
    """Validate the selection, run `action` (redrive or purge) as the caller, answer the result."""
    selection = DeadLetterSelectionSerializer(data=request.data)
    selection.is_valid(raise_exception=True)
    return _action_response(
        _dead_letter_errors(lambda: action(stream=stream, actor=request.user.get_username(), **selection.selection()))
    )


class DeadLetterRedriveApi(APIView):
    """Put dead letters back on their stream, each exactly once, keeping its event id (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        request=DeadLetterSelectionSerializer,
        responses=DeadLetterActionOutputSerializer,
        operation_id="dead_letters_redrive",
    )
    def post(self, request, stream: str):
        return _dead_letter_action(request, stream, dead_letters_redrive)


class DeadLetterPurgeApi(APIView):
    """Delete dead letters for good (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        request=DeadLetterSelectionSerializer,
        responses=DeadLetterActionOutputSerializer,
        operation_id="dead_letters_purge",
    )
    def post(self, request, stream: str):
        return _dead_letter_action(request, stream, dead_letters_purge)


class ConsumerSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    stream = serializers.CharField(allow_null=True)
    group = serializers.CharField(allow_null=True)
    paused = serializers.BooleanField()
    paused_by = serializers.CharField()
    paused_reason = serializers.CharField()
    replicas = serializers.IntegerField(help_text="processes that reported in the last WORKER_REPLICA_TTL_S")
    stuck_replicas = serializers.IntegerField()
    rate_per_s = serializers.FloatField(allow_null=True, help_text="processed per second over the last minute")
    oldest_pending_age_s = serializers.FloatField(allow_null=True)
    pending = serializers.IntegerField(allow_null=True)
    lag = serializers.IntegerField(allow_null=True)
    dead_letters = serializers.IntegerField(allow_null=True)


class ConsumerListApi(APIView):
    """Every registry entry: paused or not, live replicas, rate, pending, lag, dead letters (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=ConsumerSerializer(many=True), operation_id="consumers_list")
    def get(self, request):
        try:
            rows = [row.as_dict() for row in consumer_overview()]
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailable(f"Redis is unreachable: {exc}") from exc
        return Response(ConsumerSerializer(rows, many=True).data)


class PauseStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    paused = serializers.BooleanField()
    reason = serializers.CharField()
    changed_by = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)


def _steer(name: str, change) -> Response:
    if name not in all_names():
        raise NotFound(f"No consumer {name!r}; see GET /api/v1/consumers/.")
    try:
        state: PauseState = change()
    except UNAVAILABLE_ERRORS as exc:
        raise ServiceUnavailable(f"Redis is unreachable, nothing changed: {exc}") from exc
    return Response(PauseStateSerializer(state).data)


class ConsumerPauseApi(APIView):
    """Pause every replica of a consumer: it reads nothing and keeps its pending entries (staff)."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    @extend_schema(request=InputSerializer, responses=PauseStateSerializer, operation_id="consumers_pause")
    def post(self, request, name: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        who = f"api:{request.user.get_username()}"
        return _steer(name, lambda: consumer_pause(name=name, by=who, reason=data.validated_data["reason"]))


class ConsumerResumeApi(APIView):
    """Resume every replica of a consumer; it goes on where it stopped (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=PauseStateSerializer, operation_id="consumers_resume")
    def post(self, request, name: str):
        return _steer(name, lambda: consumer_resume(name=name, by=f"api:{request.user.get_username()}"))
