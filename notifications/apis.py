from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.api import AnyContentTypeJSONParser, StrictCharField
from commsplatform.errors import ServiceUnavailable
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm
from workers.publish import StreamUnavailable

from .selectors import notification_message_list
from .sending import send_test_email
from .services import notification_message_publish
from .smtp import SmtpUnavailable


class EventPublishApi(APIView):
    """Publish a notification message to NotificationStream."""

    permission_classes = [HasPerm("notifications.add_notificationmessage")]

    class InputSerializer(serializers.Serializer):
        description = StrictCharField(max_length=10_000, error_messages={"invalid": "Must be a string."})

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        description = serializers.CharField()
        timestamp = serializers.CharField()
        stream_id = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, operation_id="events_publish")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = notification_message_publish(**serializer.validated_data)
        except StreamUnavailable as exc:
            raise ServiceUnavailable("The event stream is unavailable; retry shortly.") from exc
        # Plain fields already; the OutputSerializer documents them without re-validating.
        return Response(asdict(message), status=status.HTTP_200_OK)


class SeedEventPublishApi(EventPublishApi):
    """`POST /event` exactly as the seed's producer took it (any Content-Type, JSON body)."""

    parser_classes = [AnyContentTypeJSONParser]

    @extend_schema(
        request=EventPublishApi.InputSerializer,
        responses={200: EventPublishApi.OutputSerializer},
        operation_id="seed_event_publish",
        tags=["seed"],
    )
    def post(self, request):
        return super().post(request)


class EventListApi(EventPublishApi):
    """Stored notification messages, newest first; POST publishes one."""

    permission_classes = [
        HasPerm(GET="notifications.view_notificationmessage", POST="notifications.add_notificationmessage")
    ]

    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    class ListOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="message_id")
        event_id = serializers.UUIDField()
        description = serializers.CharField()
        timestamp = serializers.DateTimeField()
        stream_id = serializers.CharField()
        received_at = serializers.DateTimeField()

    @extend_schema(
        parameters=[OpenApiParameter("search", str, description="text the description contains")],
        responses=ListOutputSerializer(many=True),
        operation_id="events_list",
    )
    def get(self, request):
        messages = notification_message_list(search=request.query_params.get("search"))
        return paginated_response(request, self, messages, self.ListOutputSerializer)


class SeedEmailSendApi(APIView):
    """Seed 002's `POST /api/v1/email/send`: send a test mail to test@test.com; `true`."""

    permission_classes = [HasPerm("notifications.send_test_email")]

    @extend_schema(request=None, responses={200: bool}, operation_id="seed_email_send", tags=["seed"])
    def post(self, request):
        try:
            reply = send_test_email()
        except SmtpUnavailable as exc:
            raise ServiceUnavailable("The mail server is unavailable; retry shortly.") from exc
        if reply.code >= 400:
            raise ServiceUnavailable(f"The mail server refused the test mail: {reply.code} {reply.text}")
        return Response(True)
