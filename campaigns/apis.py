from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.authentication import CachedTokenAuthentication
from commsplatform.errors import Conflict
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm
from commsplatform.schema import ErrorSerializer
from commsplatform.validators import validate_no_control_characters as no_control_chars
from notifications.models import Delivery
from notifications.templating import FIELDS, unknown_fields

from .models import Campaign
from .selectors import campaign_get, campaign_list
from .services import (
    campaign_cancel,
    campaign_create,
    campaign_queue,
    campaign_retry_failed,
    campaign_seed_create,
)
from .states import IllegalTransition


class CampaignOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    htmlBody = serializers.CharField(source="html_body")
    fromEmail = serializers.EmailField(source="from_email")
    channels = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    recipients = serializers.IntegerField(source="recipients_count")
    sent = serializers.IntegerField(source="sent_count")
    failed = serializers.IntegerField(source="failed_count")
    skipped = serializers.IntegerField(source="skipped_count")
    unsubscribed = serializers.IntegerField(source="unsubscribed_count", help_text="of skipped")
    bounced = serializers.IntegerField(source="bounced_count", help_text="of sent: bounced later")
    progress = serializers.FloatField(source="progress_percent")
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)


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
        htmlBody = serializers.CharField(
            max_length=200_000, required=False, default="", allow_blank=True, validators=[_template_field("htmlBody")]
        )
        fromEmail = serializers.EmailField(required=False, validators=[no_control_chars])
        channels = serializers.ListField(
            child=serializers.ChoiceField(choices=Delivery.Channel.values),
            required=False,
            min_length=1,
            default=["email"],
        )
        send = serializers.BooleanField(required=False, default=True)

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
            html_body=data["htmlBody"],
            from_email=data.get("fromEmail"),
            channels=data["channels"],
            send=data["send"],
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
    """One campaign with its live counters."""

    permission_classes = [HasPerm("campaigns.view_campaign")]

    @extend_schema(responses=CampaignOutputSerializer, operation_id="campaigns_retrieve")
    def get(self, request, campaign_id: int):
        return Response(CampaignOutputSerializer(_get_or_404(campaign_id)).data)


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
