from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.authentication import CachedTokenAuthentication
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm, can_view_recipient_pii
from commsplatform.validators import validate_no_control_characters as no_control_chars

from .selectors import recipient_get, recipient_list
from .services import recipient_create, recipients_generate


class RecipientOutputSerializer(serializers.Serializer):
    """A recipient under /api/v1/: snake_case like every /api/v1/ route, with opt-out and
    timestamps. (The seed's route keeps the seed's camelCase shape, below.)"""

    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    mobile = serializers.CharField(allow_null=True)  # null: hidden from a caller without users.view_recipient_pii
    device_id = serializers.CharField()
    opted_out = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SeedRecipientOutputSerializer(serializers.Serializer):
    """Seed 002's user, field for field: `id, username, name, lastName, email, mobile, deviceId`."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    lastName = serializers.CharField(source="last_name")
    email = serializers.EmailField(allow_null=True)
    mobile = serializers.CharField(allow_null=True)
    deviceId = serializers.CharField(source="device_id")


def _redacted(serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """`serializer` without the recipient's email and mobile, for callers who may not see them."""

    class Redacted(serializer):  # type: ignore[valid-type,misc]
        def to_representation(self, instance):
            return {**super().to_representation(instance), "email": None, "mobile": None}

    Redacted.__name__ = f"Redacted{serializer.__name__}"
    return Redacted


_REDACTED = {
    RecipientOutputSerializer: _redacted(RecipientOutputSerializer),
    SeedRecipientOutputSerializer: _redacted(SeedRecipientOutputSerializer),
}


def _recipient_serializer(
    request, shape: type[serializers.Serializer] = RecipientOutputSerializer
) -> type[serializers.Serializer]:
    return shape if can_view_recipient_pii(request.user) else _REDACTED[shape]


class RecipientListApi(APIView):
    """Recipients (paginated); POST creates one."""

    permission_classes = [HasPerm(GET="users.view_recipient", POST="users.add_recipient")]

    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    class InputSerializer(serializers.Serializer):
        # Every text field can be rendered into a campaign subject: no line breaks (header injection).
        username = serializers.CharField(max_length=150, validators=[no_control_chars])
        name = serializers.CharField(
            max_length=150, required=False, allow_blank=True, default="", validators=[no_control_chars]
        )
        last_name = serializers.CharField(
            max_length=150, required=False, allow_blank=True, default="", validators=[no_control_chars]
        )
        email = serializers.EmailField(required=False, allow_null=True, default=None, validators=[no_control_chars])
        mobile = serializers.CharField(
            max_length=32, required=False, allow_blank=True, default="", validators=[no_control_chars]
        )
        device_id = serializers.CharField(
            max_length=64, required=False, allow_blank=True, default="", validators=[no_control_chars]
        )
        opted_out = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        parameters=[OpenApiParameter("search", str, description="username, email or name contains")],
        responses=RecipientOutputSerializer(many=True),
        operation_id="users_list",
    )
    def get(self, request):
        return paginated_response(
            request, self, recipient_list(search=request.query_params.get("search")), _recipient_serializer(request)
        )

    @extend_schema(request=InputSerializer, responses={201: RecipientOutputSerializer}, operation_id="users_create")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            recipient = recipient_create(
                username=data["username"],
                name=data["name"],
                last_name=data["last_name"],
                email=data["email"],
                mobile=data["mobile"],
                device_id=data["device_id"],
                opted_out=data["opted_out"],
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict)
        except IntegrityError:  # a concurrent create won the race
            raise ValidationError({"username": ["A recipient with this username or email already exists."]})
        return Response(_recipient_serializer(request)(recipient).data, status=status.HTTP_201_CREATED)


class RecipientDetailApi(APIView):
    """One recipient (`GET /api/v1/users/<id>/`)."""

    permission_classes = [HasPerm("users.view_recipient")]
    shape: type[serializers.Serializer] = RecipientOutputSerializer

    @extend_schema(responses=RecipientOutputSerializer, operation_id="users_retrieve")
    def get(self, request, recipient_id: int):
        recipient = recipient_get(recipient_id=recipient_id)
        if recipient is None:
            raise NotFound(f"No user with id {recipient_id}.")
        return Response(_recipient_serializer(request, self.shape)(recipient).data)


class SeedRecipientDetailApi(RecipientDetailApi):
    """The seed's `GET /api/v1/user/<id>`: the same recipient in the seed's shape."""

    shape = SeedRecipientOutputSerializer

    @extend_schema(responses=SeedRecipientOutputSerializer, operation_id="seed_users_retrieve", tags=["seed"])
    def get(self, request, recipient_id: int):
        return super().get(request, recipient_id)


class SeedUserGenerateApi(APIView):
    """`GET /api/v1/user/generate`: add USERS_GENERATE_COUNT (100,000) fake users. Staff only."""

    # A GET with a side effect: token only, so a browser's session cookie cannot trigger it cross-site.
    authentication_classes = [CachedTokenAuthentication]
    permission_classes = [IsAdminUser]

    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer, operation_id="seed_users_generate", tags=["seed"])
    def get(self, request):
        created = recipients_generate(count=settings.USERS_GENERATE_COUNT)
        return Response({"created": created})
