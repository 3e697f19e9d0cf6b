from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.errors import ServiceUnavailable

from .connection import UNAVAILABLE_ERRORS
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
