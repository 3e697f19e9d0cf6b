from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from commsplatform.authentication import CachedTokenAuthentication
from commsplatform.errors import Conflict, ServiceUnavailable
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm
from commsplatform.schema import ErrorSerializer
from commsplatform.validators import validate_no_control_characters as no_control_chars
from notifications.models import Delivery
from notifications.smtp import SmtpUnavailable
from notifications.templating import FIELDS, unknown_fields

from .models import Campaign
from .preview import InvalidMessage, UnknownRecipient, campaign_preview, campaign_send_test
from .selectors import campaign_delivery_stats, campaign_failures, campaign_get, campaign_list
from .services import (
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_queue,
    campaign_resume,
    campaign_retry_failed,
    campaign_seed_create,
    campaign_update,
)
from .states import IllegalTransition


class CampaignOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    html_body = serializers.CharField()
    from_email = serializers.EmailField()
    channels = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    recipients = serializers.IntegerField(source="recipients_count")
    sent = serializers.IntegerField(source="sent_count")
    failed = serializers.IntegerField(source="failed_count")
    skipped = serializers.IntegerField(source="skipped_count")
    unsubscribed = serializers.IntegerField(source="unsubscribed_count", help_text="of skipped")
    bounced = serializers.IntegerField(source="bounced_count", help_text="of sent: bounced later")
    progress = serializers.FloatField(source="progress_percent")
    send_at = serializers.DateTimeField(allow_null=True)
    paused_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class FailureSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    recipient_id = serializers.IntegerField(allow_null=True)
    address = serializers.CharField()
    smtp_code = serializers.IntegerField(allow_null=True)
    smtp_response = serializers.CharField()
    attempts = serializers.IntegerField()
    retryable = serializers.BooleanField()


class CampaignDetailOutputSerializer(CampaignOutputSerializer):
    deliveries = serializers.DictField(
        source="delivery_stats",
        child=serializers.IntegerField(),
        help_text="deliveries per ledger status: sent, failed, bounced, unsubscribed, skipped (and any other)",
    )
    failures = FailureSerializer(
        source="latest_failures", many=True, help_text="the latest failed deliveries with their SMTP reply"
    )


def _detail(campaign: Campaign) -> dict:
    campaign.delivery_stats = campaign_delivery_stats(campaign_id=campaign.pk)  # type: ignore[attr-defined]
    campaign.latest_failures = campaign_failures(campaign_id=campaign.pk)  # type: ignore[attr-defined]
    return CampaignDetailOutputSerializer(campaign).data


def _future(value):
    if value is not None and value <= timezone.now():
        raise serializers.ValidationError("Must be in the future.")
    return value


def _template_field(label: str):
    def validate(value: str) -> str:
        bad = unknown_fields(value)
        if bad:
            raise serializers.ValidationError(
                f"Unknown template field(s) {', '.join(bad)}; allowed: {', '.join(FIELDS)}."
            )
        return value

    return validate


class CampaignListApi(APIView):
    """Campaigns, newest first; POST creates one and (unless `send` is false) starts sending."""

    permission_classes = [
        HasPerm(GET="campaigns.view_campaign", POST=("campaigns.add_campaign", "campaigns.send_campaign"))
    ]

    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    class InputSerializer(serializers.Serializer):
        # Name, subject and sender can reach a mail header: no line breaks (header injection).
        name = serializers.CharField(max_length=200, validators=[no_control_chars])
        subject = serializers.CharField(max_length=998, validators=[no_control_chars, _template_field("subject")])
        body = serializers.CharField(max_length=100_000, validators=[_template_field("body")])
        # Optional HTML part (multipart/alternative); recipient fields are HTML-escaped in it.
        html_body = serializers.CharField(
            max_length=200_000, required=False, default="", allow_blank=True, validators=[_template_field("html_body")]
        )
        from_email = serializers.EmailField(required=False, validators=[no_control_chars])
        channels = serializers.ListField(
            child=serializers.ChoiceField(choices=Delivery.Channel.values),
            required=False,
            min_length=1,
            default=["email"],
        )
        send = serializers.BooleanField(required=False, default=True)
        send_at = serializers.DateTimeField(
            required=False, allow_null=True, validators=[_future], help_text="start then (status `scheduled`)"
        )

        def validate_channels(self, value):
            return list(dict.fromkeys(value))

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Campaign.Status.values)],
        responses=CampaignOutputSerializer(many=True),
        operation_id="campaigns_list",
    )
    def get(self, request):
        return paginated_response(
            request, self, campaign_list(status=request.query_params.get("status")), CampaignOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: CampaignOutputSerializer}, operation_id="campaigns_create")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = campaign_create(
            name=data["name"],
            subject=data["subject"],
            body=data["body"],
            html_body=data["html_body"],
            from_email=data.get("from_email"),
            channels=data["channels"],
            send=data["send"],
            send_at=data.get("send_at"),
            created_by=request.user,
        )
        return Response(CampaignOutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


def _get_or_404(campaign_id: int) -> Campaign:
    campaign = campaign_get(campaign_id=campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign with id {campaign_id}.")
    return campaign


ILLEGAL_TRANSITION = OpenApiResponse(ErrorSerializer, description="The campaign's status does not allow this.")


class CampaignDetailApi(APIView):
    """One campaign with its live counters, its deliveries per status and its latest
    failures; PATCH changes subject, body or send_at while it is a draft or scheduled."""

    permission_classes = [HasPerm(GET="campaigns.view_campaign", PATCH="campaigns.change_campaign")]

    class InputSerializer(serializers.Serializer):
        subject = serializers.CharField(
            required=False, max_length=998, validators=[no_control_chars, _template_field("subject")]
        )
        body = serializers.CharField(required=False, max_length=100_000, validators=[_template_field("body")])
        send_at = serializers.DateTimeField(required=False, validators=[_future])

    @extend_schema(responses=CampaignDetailOutputSerializer, operation_id="campaigns_retrieve")
    def get(self, request, campaign_id: int):
        return Response(_detail(_get_or_404(campaign_id)))

    @extend_schema(
        request=InputSerializer,
        responses={200: CampaignDetailOutputSerializer, 409: ILLEGAL_TRANSITION},
        operation_id="campaigns_update",
    )
    def patch(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            campaign_update(
                campaign_id=campaign_id, subject=data.get("subject"), body=data.get("body"), send_at=data.get("send_at")
            )
        except IllegalTransition as exc:
            raise Conflict(str(exc))
        return Response(_detail(_get_or_404(campaign_id)))


class CampaignSendApi(APIView):
    """Start sending a draft."""

    permission_classes = [HasPerm("campaigns.send_campaign")]

    @extend_schema(
        request=None, responses={200: CampaignOutputSerializer, 409: ILLEGAL_TRANSITION}, operation_id="campaigns_send"
    )
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        try:
            campaign_queue(campaign_id=campaign_id)
        except IllegalTransition as exc:
            raise Conflict(str(exc))
        return Response(CampaignOutputSerializer(_get_or_404(campaign_id)).data)


class CampaignCancelApi(APIView):
    """Cancel a draft, queued or sending campaign; unsent deliveries become `cancelled`."""

    permission_classes = [HasPerm("campaigns.change_campaign")]

    @extend_schema(
        request=None,
        responses={200: CampaignOutputSerializer, 409: ILLEGAL_TRANSITION},
        operation_id="campaigns_cancel",
    )
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        try:
            campaign_cancel(campaign_id=campaign_id)
        except IllegalTransition as exc:
            raise Conflict(str(exc))
        return Response(CampaignOutputSerializer(_get_or_404(campaign_id)).data)


class CampaignRetryFailedApi(APIView):
    """Send again to the failed recipients of a campaign, and to no one else."""

    permission_classes = [HasPerm("campaigns.send_campaign")]

    class OutputSerializer(serializers.Serializer):
        retried = serializers.IntegerField()

    @extend_schema(
        request=None,
        responses={200: OutputSerializer, 409: ILLEGAL_TRANSITION},
        operation_id="campaigns_retry_failed",
    )
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        try:
            return Response({"retried": campaign_retry_failed(campaign_id=campaign_id)})
        except IllegalTransition as exc:
            raise Conflict(str(exc))


class CampaignPauseApi(APIView):
    """Pause a sending campaign: fan-out and sending stop within a batch; unsent rows wait."""

    permission_classes = [HasPerm("campaigns.send_campaign")]

    @extend_schema(
        request=None, responses={200: CampaignOutputSerializer, 409: ILLEGAL_TRANSITION}, operation_id="campaigns_pause"
    )
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        try:
            campaign_pause(campaign_id=campaign_id)
        except IllegalTransition as exc:
            raise Conflict(str(exc))
        return Response(CampaignOutputSerializer(_get_or_404(campaign_id)).data)


class CampaignResumeApi(APIView):
    """Resume a paused campaign where it stopped (no recipient gets a second mail)."""

    permission_classes = [HasPerm("campaigns.send_campaign")]

    @extend_schema(
        request=None,
        responses={200: CampaignOutputSerializer, 409: ILLEGAL_TRANSITION},
        operation_id="campaigns_resume",
    )
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        try:
            campaign_resume(campaign_id=campaign_id)
        except IllegalTransition as exc:
            raise Conflict(str(exc))
        return Response(CampaignOutputSerializer(_get_or_404(campaign_id)).data)


class PreviewOutputSerializer(serializers.Serializer):
    envelope_from = serializers.CharField()
    to = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    headers = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))


class CampaignPreviewApi(APIView):
    """The campaign as `recipient` would get it: subject, text body and headers, built by
    the sender's own message builder. Shows the recipient's address: operators only."""

    permission_classes = [HasPerm("campaigns.change_campaign")]

    @extend_schema(
        parameters=[OpenApiParameter("recipient", int, required=True)],
        responses=PreviewOutputSerializer,
        operation_id="campaigns_preview",
    )
    def get(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        raw = request.query_params.get("recipient", "")
        if not raw.isdigit():
            raise ValidationError({"recipient": ["A recipient id (an integer) is required."]})
        try:
            preview = campaign_preview(campaign_id=campaign_id, recipient_id=int(raw))
        except UnknownRecipient as exc:
            raise ValidationError({"recipient": [str(exc)]})
        except InvalidMessage as exc:
            raise ValidationError({"recipient": [f"This recipient's mail cannot be sent: {exc}"]})
        return Response(PreviewOutputSerializer(preview).data)


class CampaignSendTestApi(APIView):
    """Send the campaign to one address now (not a delivery: no ledger row, no counter).
    Rate-limited per user (EMAIL_TEST_SEND_RATE) and by the platform's send rate."""

    permission_classes = [HasPerm("campaigns.send_campaign")]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "campaign-send-test"

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(validators=[no_control_chars])
        recipient = serializers.IntegerField(required=False, help_text="render it for this recipient")

    class OutputSerializer(serializers.Serializer):
        smtp_code = serializers.IntegerField(source="code")
        smtp_response = serializers.CharField(source="text")

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="campaigns_send_test")
    def post(self, request, campaign_id: int):
        _get_or_404(campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            reply = campaign_send_test(campaign_id=campaign_id, email=data["email"], recipient_id=data.get("recipient"))
        except UnknownRecipient as exc:
            raise ValidationError({"recipient": [str(exc)]})
        except InvalidMessage as exc:
            raise ValidationError({"email": [str(exc)]})
        except SmtpUnavailable as exc:
            raise ServiceUnavailable(f"The mail server is unavailable: {exc}")
        return Response(self.OutputSerializer(reply).data)


class SeedCampaignCreateApi(APIView):
    """Seed 002's `GET /api/v1/campaign/create`: a `Campaign XXXXX` to every user."""

    # A GET with a side effect: token only, so a browser's session cookie cannot trigger it cross-site.
    authentication_classes = [CachedTokenAuthentication]
    permission_classes = [HasPerm("campaigns.add_campaign", "campaigns.send_campaign")]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()

    @extend_schema(responses=OutputSerializer, operation_id="seed_campaign_create", tags=["seed"])
    def get(self, request):
        campaign = campaign_seed_create(created_by=request.user)
        return Response({"id": campaign.pk, "name": campaign.name})
