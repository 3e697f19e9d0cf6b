import re

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.api import AnyContentTypeJSONParser
from commsplatform.common_case import (
    CommonCaseView,
    cached_caller_permitted,
    plain_json,
    rendered_error,
    rendered_json,
    throttled,
)
from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm

from .models import Order
from .selectors import order_get, order_list, shop_report
from .services import IdempotencyKeyReused, OrderInvalid, order_place, shop_reset_to_seed


class IdField(serializers.IntegerField):
    """A positive id given as a number or as a string of digits (the seed sent "101")."""

    default_error_messages = {"invalid": "Must be a positive integer id (a number or a string of digits)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not data.strip().isdigit():
            self.fail("invalid")
        return super().to_internal_value(data)


class Unprocessable(exceptions.APIException):
    status_code = 422
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


_MAX_ID = 2**63 - 1
_MAX_LINES = 100


class OrderPlaceInputSerializer(serializers.Serializer):
    product_ids = serializers.ListField(child=IdField(), allow_empty=False, min_length=1, max_length=_MAX_LINES)
    customer_id = IdField()


IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII, as Order.idempotency_key stores it


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if not key:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise serializers.ValidationError(
            {"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]}, code="invalid"
        )
    return key


def _place(request) -> tuple[Order, bool]:
    idempotency_key = _idempotency_key(request)
    serializer = OrderPlaceInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        return order_place(**serializer.validated_data, user=request.user, idempotency_key=idempotency_key)
    except OrderInvalid as exc:
        raise serializers.ValidationError(exc.errors)
    except IdempotencyKeyReused as exc:
        raise Unprocessable(str(exc))


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    product_ids = serializers.ListField(child=serializers.IntegerField())
    status = serializers.CharField()
    total = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finalized_at = serializers.DateTimeField(allow_null=True)


class OrderDetailOutputSerializer(OrderOutputSerializer):
    message = serializers.SerializerMethodField()

    def get_message(self, order: Order) -> str | None:
        message = getattr(order, "message", None)
        return message.text if message else None


class OrderListApi(APIView):
    """Orders, newest first (filter by customer_id, status); POST places one."""

    permission_classes = [HasPerm(GET="orders.view_order", POST="orders.add_order")]

    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    @extend_schema(
        parameters=[
            OpenApiParameter("customer_id", int),
            OpenApiParameter("status", str, enum=Order.Status.values),
        ],
        responses=OrderOutputSerializer(many=True),
        operation_id="orders_list",
    )
    def get(self, request):
        customer_id = request.query_params.get("customer_id")
        if customer_id is not None and not customer_id.isdigit():
            raise serializers.ValidationError({"customer_id": ["Must be an integer."]})
        orders = order_list(
            customer_id=int(customer_id) if customer_id else None, status=request.query_params.get("status")
        )
        return paginated_response(request, self, orders, OrderOutputSerializer)

    @extend_schema(
        request=OrderPlaceInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                description="same key + same body → the same order (200); same key + another body → 422; "
                "1 to 255 printable ASCII characters",
            )
        ],
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer},
        operation_id="orders_place",
    )
    def post(self, request):
        order, created = _place(request)
        return Response(
            OrderOutputSerializer(order).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class OrderDetailApi(APIView):
    permission_classes = [HasPerm("orders.view_order")]

    @extend_schema(responses=OrderDetailOutputSerializer, operation_id="orders_retrieve")
    def get(self, request, order_id: int):
        order = order_get(order_id=order_id)
        if order is None:
            raise exceptions.NotFound(f"No order {order_id}.")
        return Response(OrderDetailOutputSerializer(order).data)


# --- seed 004 routes -------------------------------------------------------------------
def _seed_order_answer(order: Order) -> dict:
    """SeedOrderPlaceApi.OutputSerializer's shape, built directly (the saga's busiest route)."""
    return {
        "id": str(order.pk),
        "product_ids": [str(pid) for pid in order.product_ids],
        "customer_id": str(order.customer_id),
        "status": order.status,
    }


_DIGITS = re.compile(r"[0-9]{1,19}")


def _plain_id(value: object) -> int | None:
    """The id when IdField would take `value` as it is (an int, or a string of ASCII digits)."""
    if type(value) is int:
        number = value
    elif type(value) is str and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if 1 <= number <= _MAX_ID else None


class SeedOrderPlaceApi(CommonCaseView, APIView):
    """`POST /order` as the seed's gateway took it; the answer is the pending order.

    The saga's busiest route has a lean path, as `POST /event` has (notifications.apis): a
    request that needs nothing but the common case (a token this process verified within
    API_TOKEN_CACHE_S, the permission, the throttles allowing, no Idempotency-Key, a UTF-8
    body of exactly `product_ids` and `customer_id` that OrderPlaceInputSerializer would
    take unchanged) is answered without DRF's request wrapping, content negotiation and
    serializer, with the same permission and throttle classes, the same service and the
    same JSON error shape. Anything else goes through the DRF view, which gives the exact
    answer.
    """

    permission_classes = [HasPerm("orders.add_order")]

    parser_classes = [AnyContentTypeJSONParser]

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        product_ids = serializers.ListField(child=serializers.CharField())
        customer_id = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        request=OrderPlaceInputSerializer,
        responses={200: OutputSerializer},
        operation_id="seed_order_place",
        tags=["seed"],
    )
    def post(self, request):
        order, _ = _place(request)
        return Response(_seed_order_answer(order))

    @classmethod
    def common_case(cls, request) -> HttpResponse | None:
        """The answer to a common-case request, or None (nothing done: the DRF view answers it)."""
        if "HTTP_IDEMPOTENCY_KEY" in request.META or not cached_caller_permitted(cls, request):
            return None
        body = cls._plain_body(request)
        if body is None:
            return None
        customer_id, product_ids = body
        response = throttled(cls, request)
        if response is None:
            try:
                order, _ = order_place(customer_id=customer_id, product_ids=product_ids, user=request.user)
            except OrderInvalid as exc:
                response = rendered_error(serializers.ValidationError(exc.errors))
            else:
                response = HttpResponse(rendered_json(_seed_order_answer(order)), content_type="application/json")
        response["Allow"] = "POST, OPTIONS"  # as DRF's default response headers
        return response

    @staticmethod
    def _plain_body(request) -> tuple[int, list[int]] | None:
        """(customer_id, product_ids) when OrderPlaceInputSerializer would take the body as
        it is, else None."""
        data = plain_json(request)
        if type(data) is not dict or len(data) != 2:
            return None
        customer_id, products = _plain_id(data.get("customer_id")), data.get("product_ids")
        if customer_id is None or type(products) is not list or not 1 <= len(products) <= _MAX_LINES:
            return None
        product_ids = [_plain_id(product) for product in products]
        if None in product_ids:
            return None
        return customer_id, product_ids  # type: ignore[return-value]  # no None left


class SeedReportApi(APIView):
    """`GET /report`: accounts, inventory and the latest orders."""

    permission_classes = [HasPerm("orders.view_order", "inventory.view_product", "accounts.view_account")]

    @extend_schema(responses={200: dict}, operation_id="seed_report", tags=["seed"])
    def get(self, request):
        return Response(shop_report())


class SeedInitDataApi(APIView):
    """`POST /init-data` (staff): products and accounts back to the seed data."""

    permission_classes = [IsAdminUser]
    parser_classes = [AnyContentTypeJSONParser]

    @extend_schema(request=None, responses={200: dict}, operation_id="seed_init_data", tags=["seed"])
    def post(self, request):
        shop_reset_to_seed()
        return Response(shop_report())
