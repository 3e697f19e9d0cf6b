from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commsplatform.pagination import PageNumberPagination, paginated_response
from commsplatform.permissions import HasPerm

from .selectors import account_list


class AccountOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    balance = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class AccountListApi(APIView):
    permission_classes = [HasPerm("accounts.view_account")]
    pagination_class = PageNumberPagination  # the OpenAPI schema documents the page envelope

    @extend_schema(responses=AccountOutputSerializer(many=True), operation_id="accounts_list")
    def get(self, request):
        return paginated_response(request, self, account_list(), AccountOutputSerializer)


class AccountDetailApi(APIView):
    permission_classes = [HasPerm("accounts.view_account")]

    @extend_schema(responses=AccountOutputSerializer, operation_id="accounts_retrieve")
    def get(self, request, account_id: int):
        account = account_list().filter(pk=account_id).first()
        if account is None:
            raise exceptions.NotFound(f"No account {account_id}.")
        return Response(AccountOutputSerializer(account).data)
