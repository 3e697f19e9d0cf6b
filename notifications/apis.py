import hashlib
import hmac
from dataclasses import asdict

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer, StaticHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.api import AnyContentTypeJSONParser, StrictCharField
from commsplatform.common_case import (
    CommonCaseView,
    cached_caller_permitted,
    counted_throttles,
    plain_json,
    throttled,
    throttled_answer,
)
from commsplatform.errors import ServiceUnavailable, error_body, rendered_api_error
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm
from commsplatform.schema import ErrorSerializer
from commsplatform.throttling import AnonRateThrottle
from commsplatform.validators import validate_no_control_characters as no_control_chars
from workers.publish import RateExceeded, StreamUnavailable

from .bounces import bounce_record
from .models import Suppression
from .selectors import notification_message_list, suppression_list
from .sending import send_test_email
from .services import notification_message_publish
from .smtp import SmtpUnavailable
from .suppression import suppression_add, suppression_delete
from .unsubscribe import BadToken, unsubscribe, unsubscribe_token_read

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


class SeedEventPublishApi(CommonCaseView, EventPublishApi):
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
    _allow: str | None = None  # the Allow header DRF gives this view's answers

    @extend_schema(
        request=EventPublishApi.InputSerializer,
        responses={200: EventPublishApi.OutputSerializer},
        operation_id="seed_event_publish",
        tags=["seed"],
    )
    def post(self, request):
        return super().post(request)

    @classmethod
    def common_case(cls, request) -> HttpResponse | None:
        """The answer to a common-case request, or None (nothing done: the DRF view answers it)."""
        if not cached_caller_permitted(cls, request):
            return None
        description = cls._plain_description(request)
        if description is None:
            return None
        counted = counted_throttles(cls, request)  # checked with the XADD, or first
        if counted is None:
            refusal = throttled(cls, request)
            if refusal is not None:
                return cls._with_allow(refusal)
        try:
            message = notification_message_publish(
                description=description, rate_windows=counted.windows if counted is not None else ()
            )
        except RateExceeded as exceeded:  # only a counted publish is refused this way
            return cls._throttled(counted.refused(exceeded) if counted is not None else [])
        except StreamUnavailable:
            return cls._with_allow(
                rendered_api_error(ServiceUnavailable("The event stream is unavailable; retry shortly."))
            )
        # The fields as asdict() gives them (plain str/int values: nothing to copy deeply).
        body = {
            "id": message.id,
            "description": message.description,
            "timestamp": message.timestamp,
            "stream_id": message.stream_id,
        }
        return cls._with_allow(HttpResponse(_JSON.render(body), content_type="application/json"))

    @classmethod
    def _throttled(cls, refused: list) -> HttpResponse:
        """DRF's answer when throttles refuse (APIView.check_throttles): the longest wait."""
        return cls._with_allow(throttled_answer(refused))

    @classmethod
    def _with_allow(cls, response: HttpResponse) -> HttpResponse:
        if cls._allow is None:
            cls._allow = ", ".join(cls().allowed_methods)
        response["Allow"] = cls._allow  # APIView.finalize_response sets it on every answer
        return response

    @staticmethod
    def _plain_description(request) -> str | None:
        """The description when the InputSerializer would take it as it is, else None."""
        data = plain_json(request)
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


_JSON = JSONRenderer()  # stateless: one for every request


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


# --- consent: unsubscribe links, the suppression list, bounces ---------------------------
class UnsubscribeRateThrottle(AnonRateThrottle):
    scope = "unsubscribe"


class BounceWebhookRateThrottle(AnonRateThrottle):
    scope = "bounce_webhook"


_UNSUBSCRIBED = error_body(200, "You are unsubscribed: no more campaign mail goes to this address.")
_BAD_LINK = error_body(404, "This unsubscribe link is not valid.")


class UnsubscribeApi(APIView):
    """RFC 8058 one-click unsubscribe: the signed token is the only credential.

    Idempotent; whatever is wrong with a token (forged, altered, its recipient gone) the
    answer is the same 404 body, and neither answer names the recipient.
    """

    authentication_classes: list = []  # no session, so no CSRF check: a mail client POSTs here
    permission_classes = [AllowAny]
    throttle_classes = [UnsubscribeRateThrottle]

    def _unsubscribe(self, token: str) -> bool:
        try:
            unsubscribe(token=token)
        except BadToken:
            return False
        return True

    @extend_schema(
        request=None,
        responses={200: ErrorSerializer, 404: ErrorSerializer},
        operation_id="unsubscribe",
        description="The body (`List-Unsubscribe=One-Click`) is not read.",
    )
    def post(self, request, token: str):
        if self._unsubscribe(token):
            return Response(_UNSUBSCRIBED)
        return Response(_BAD_LINK, status=status.HTTP_404_NOT_FOUND)


class UnsubscribePageApi(UnsubscribeApi):
    """`/u/<token>`: GET shows a confirmation page with a button that POSTs (a link
    scanner's GET changes nothing); POST is the one-click unsubscribe (JSON, or the page
    again when a browser's form sent it)."""

    renderer_classes = [JSONRenderer, StaticHTMLRenderer]

    @extend_schema(exclude=True)
    def get(self, request, token: str):
        try:
            unsubscribe_token_read(token)
        except BadToken:
            return _page(request, valid=False, done=False, status=404)
        return _page(request, valid=True, done=False, status=200)

    @extend_schema(exclude=True)
    def post(self, request, token: str):
        done = self._unsubscribe(token)
        if request.accepted_renderer.media_type == "text/html":
            return _page(request, valid=done, done=done, status=200 if done else 404)
        return Response(_UNSUBSCRIBED if done else _BAD_LINK, status=200 if done else 404)


def _page(request, *, valid: bool, done: bool, status: int) -> HttpResponse:
    html = render_to_string("notifications/unsubscribe.html", {"valid": valid, "done": done}, request=request)
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    response["Cache-Control"] = "no-store"
    return response


class SuppressionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    address = serializers.CharField()
    reason = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named "source"
    detail = serializers.CharField()
    created_at = serializers.DateTimeField()


class SuppressionListApi(APIView):
    """Suppressed addresses, newest first; POST adds one (reason `manual` by default)."""

    permission_classes = [HasPerm(GET="notifications.view_suppression", POST="notifications.add_suppression")]
    pagination_class = PageNumberPagination

    class InputSerializer(serializers.Serializer):
        address = serializers.EmailField(max_length=254, validators=[no_control_chars])
        reason = serializers.ChoiceField(choices=Suppression.Reason.values, default=Suppression.Reason.MANUAL)
        detail = StrictCharField(max_length=2000, required=False, default="", allow_blank=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="text the address contains"),
            OpenApiParameter("reason", str, enum=Suppression.Reason.values),
        ],
        responses=SuppressionOutputSerializer(many=True),
        operation_id="suppressions_list",
    )
    def get(self, request):
        reason = request.query_params.get("reason")
        if reason is not None and reason not in Suppression.Reason.values:
            raise ValidationError({"reason": [f"Must be one of {', '.join(Suppression.Reason.values)}."]})
        rows = suppression_list(search=request.query_params.get("search"), reason=reason)
        return paginated_response(request, self, rows, SuppressionOutputSerializer)

    @extend_schema(
        request=InputSerializer,
        responses={201: SuppressionOutputSerializer, 200: SuppressionOutputSerializer},
        operation_id="suppressions_create",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry, created = suppression_add(**serializer.validated_data, source=f"api:{request.user.get_username()}")
        return Response(
            SuppressionOutputSerializer(entry).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class SuppressionDetailApi(APIView):
    """DELETE removes an address from the suppression list: campaigns reach it again."""

    permission_classes = [HasPerm(DELETE="notifications.delete_suppression")]

    @extend_schema(request=None, responses={204: None, 404: ErrorSerializer}, operation_id="suppressions_delete")
    def delete(self, request, suppression_id: int):
        if not suppression_delete(suppression_id=suppression_id):
            raise NotFound(f"No suppression {suppression_id}.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class BounceSignature(BasePermission):
    """The bounce webhook's credential: X-Signature = hex HMAC-SHA256 of the raw body with
    BOUNCE_WEBHOOK_SECRET, compared in constant time. No secret configured: 404 (the
    webhook is off), nothing is accepted."""

    def has_permission(self, request, view) -> bool:
        if request.method == "OPTIONS" or not hasattr(view, request.method.lower()):
            return True  # a description, or a 405 for a method the webhook does not answer
        secret = settings.BOUNCE_WEBHOOK_SECRET
        if not secret:
            raise NotFound("The bounce webhook is not configured (BOUNCE_WEBHOOK_SECRET).")
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Signature", "").strip().removeprefix("sha256=")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise PermissionDenied("Missing or wrong X-Signature (hex HMAC-SHA256 of the body).")
        return True


class BounceWebhookApi(APIView):
    """A bounce or complaint from the mail provider (signed; see README "Bounces")."""

    authentication_classes: list = []
    permission_classes = [BounceSignature]
    throttle_classes = [BounceWebhookRateThrottle]

    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=["bounce", "complaint"])
        email = serializers.EmailField(max_length=254, validators=[no_control_chars])
        message_id = StrictCharField(max_length=200, required=False, validators=[no_control_chars])
        campaign_id = serializers.IntegerField(min_value=1, required=False)
        diagnostic = StrictCharField(max_length=2000, required=False, default="", allow_blank=True)
        permanent = serializers.BooleanField()

        def validate(self, attrs):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["Unknown field."] for name in unknown})
            return attrs

    class OutputSerializer(serializers.Serializer):
        suppressed = serializers.BooleanField()
        bounced_delivery = serializers.IntegerField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
        operation_id="bounces_record",
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError("The body must be a JSON object.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = bounce_record(
            kind=data["type"],
            address=data["email"],
            permanent=data["permanent"],
            source="webhook",
            message_id=data.get("message_id"),
            campaign_id=data.get("campaign_id"),
            diagnostic=data["diagnostic"],
        )
        return Response({"suppressed": outcome.suppressed, "bounced_delivery": outcome.delivery_id})
