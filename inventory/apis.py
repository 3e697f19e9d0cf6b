from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm

from .selectors import product_list


class ProductOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = serializers.IntegerField()
    stock = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class ProductListApi(APIView):
    permission_classes = [HasPerm("inventory.view_product")]
    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    @extend_schema(responses=ProductOutputSerializer(many=True), operation_id="products_list")
    def get(self, request):
        return paginated_response(request, self, product_list(), ProductOutputSerializer)


class ProductDetailApi(APIView):
    permission_classes = [HasPerm("inventory.view_product")]

    @extend_schema(responses=ProductOutputSerializer, operation_id="products_retrieve")
    def get(self, request, product_id: int):
        product = product_list().filter(pk=product_id).first()
        if product is None:
            raise exceptions.NotFound(f"No product {product_id}.")
        return Response(ProductOutputSerializer(product).data)
