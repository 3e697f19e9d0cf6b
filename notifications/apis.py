import functools
from dataclasses import asdict

import orjson
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.api import AnyContentTypeJSONParser, StrictCharField
from commsplatform.authentication import cached_token_user
from commsplatform.errors import ServiceUnavailable, api_exception_handler
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm
from workers.publish import StreamUnavailable

from .selectors import notification_message_list
from .sending import send_test_email
from .services import notification_message_publish
from .smtp import SmtpUnavailable

_DESCRIPTION_MAX_LENGTH = 10_000


class EventPublishApi(APIView):
    """Publish a notification message to NotificationStream."""

    permission_classes = [HasPerm("notifications.add_notificationmessage")]

    class InputSerializer(serializers.Serializer):
        description = StrictCharField(
            max_length=_DESCRIPTION_MAX_LENGTH, error_messages={"invalid": "Must be a string."}
        )

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
    """`POST /event` exactly as the seed's producer took it (any Content-Type, JSON body).

    The ingest hot path: a request that needs nothing but the common case (a token this
    process verified within API_TOKEN_CACHE_S, the permission, the throttles allowing, a
    UTF-8 body `{"description": "<text>"}` the InputSerializer would take unchanged) is
    answered without DRF's request wrapping, content negotiation and serializer, with
    the same authentication cache, permission and throttle classes, the same service and
    the same JSON error shape. Anything else (no or unknown token, refused permission,
    odd input) goes through the DRF view below, which gives the exact answer.
    """

    parser_classes = [AnyContentTypeJSONParser]

    @extend_schema(
        request=EventPublishApi.InputSerializer,
        responses={200: EventPublishApi.OutputSerializer},
        operation_id="seed_event_publish",
        tags=["seed"],
    )
    def post(self, request):
        return super().post(request)

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)

        @functools.wraps(drf_view)  # keeps .cls, .initkwargs and csrf_exempt for URL conf and schema
        def view(request, *args, **kwargs):
            if request.method == "POST":
                response = cls._common_case(request)
                if response is not None:
                    return response
            return drf_view(request, *args, **kwargs)

        return view

    @classmethod
    def _common_case(cls, request) -> HttpResponse | None:
        user_and_token = cached_token_user(request)
        if user_and_token is None:
            return None
        request.user, request.auth = user_and_token
        view = cls()
        if not all(permission().has_permission(request, view) for permission in cls.permission_classes):
            return None
        description = cls._plain_description(request)
        if description is None:
            return None
        refused = [
            throttle for throttle in (t() for t in cls.throttle_classes) if not throttle.allow_request(request, view)
        ]
        if refused:
            waits = [wait for wait in (throttle.wait() for throttle in refused) if wait is not None]
            return _rendered_error(Throttled(wait=max(waits, default=None)))
        try:
            message = notification_message_publish(description=description)
        except StreamUnavailable:
            return _rendered_error(ServiceUnavailable("The event stream is unavailable; retry shortly."))
        response = HttpResponse(JSONRenderer().render(asdict(message)), content_type="application/json")
        response["Allow"] = "POST, OPTIONS"
        return response

    @staticmethod
    def _plain_description(request) -> str | None:
        """The description when the InputSerializer would take it as it is, else None."""
        if request.encoding is not None:  # a charset in Content-Type: the parser decodes it
            return None
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return None
        # Only that one key: anything else (nesting past API_JSON_MAX_DEPTH too) is the parser's to judge.
        description = data.get("description") if type(data) is dict and len(data) == 1 else None
        if (
            type(description) is not str
            or not 0 < len(description) <= _DESCRIPTION_MAX_LENGTH
            or description != description.strip()  # CharField trims; blank is refused
            or "\x00" in description
            or (not description.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in description))
        ):
            return None
        return description


def _rendered_error(exc: Exception) -> HttpResponse:
    """The DRF path's answer to `exc` (the project's exception handler and JSON error shape)."""
    response = api_exception_handler(exc, {})
    assert response is not None
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}  # type: ignore[attr-defined]
    return response.render()


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
