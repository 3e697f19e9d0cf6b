from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.errors import ServiceUnavailable

from .connection import UNAVAILABLE_ERRORS
from .metrics import consumer_counters
from .registry import CONSUMERS
from .stats import all_stream_stats


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
