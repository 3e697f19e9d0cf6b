from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.errors import ServiceUnavailable
from commsplatform.pagination import PageNumberPagination
from commsplatform.permissions import HasPerm
from workers.connection import UNAVAILABLE_ERRORS

from .selectors import battery_id_list, battery_state_get, battery_state_many


class BatteryStateSerializer(serializers.Serializer):
    battery_id = serializers.IntegerField()
    timestamp = serializers.IntegerField()
    voltage = serializers.IntegerField()
    current = serializers.IntegerField()
    temperature = serializers.IntegerField()
    state_of_charge = serializers.IntegerField()
    state_of_health = serializers.IntegerField()


class BatteryListApi(APIView):
    """Every battery's latest reading, by battery id (live state in Redis)."""

    permission_classes = [HasPerm("telemetry.view_battery")]

    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    OutputSerializer = BatteryStateSerializer

    @extend_schema(responses=OutputSerializer(many=True), operation_id="batteries_list")
    def get(self, request):
        paginator = PageNumberPagination()
        try:
            # The paginator slices any sequence; its stub says QuerySet.
            page: list[int] | None = paginator.paginate_queryset(battery_id_list(), request, view=self)  # type: ignore[arg-type]
            states = battery_state_many(battery_ids=page or [])
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailable("The telemetry store is unavailable; retry shortly.") from exc
        return paginator.get_paginated_response(self.OutputSerializer(states, many=True).data)


class BatteryDetailApi(APIView):
    """One battery's latest reading."""

    permission_classes = [HasPerm("telemetry.view_battery")]

    OutputSerializer = BatteryStateSerializer

    @extend_schema(responses=OutputSerializer, operation_id="batteries_retrieve")
    def get(self, request, battery_id: int):
        try:
            state = battery_state_get(battery_id=battery_id)
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailable("The telemetry store is unavailable; retry shortly.") from exc
        if state is None:
            raise NotFound(f"No reading for battery {battery_id}.")
        return Response(self.OutputSerializer(state).data)
