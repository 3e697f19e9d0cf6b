"""The project's OpenAPI AutoSchema: unique component names for the per-view serializers.

Every API view nests its own `InputSerializer` / `OutputSerializer` (see STYLE.md), so
drf-spectacular's default naming (the class name without "Serializer") gave a dozen
different serializers the same component name "Output" or "InputRequest", and the
schema described most of them wrongly. A nested serializer with such a generic name is
named after its view instead: `CampaignRetryFailedApi.OutputSerializer` →
`CampaignRetryFailedOutput`. A `Meta.ref_name` or `@extend_schema_serializer(component_name=...)`
still wins.

Every operation also documents the error responses the exception handler produces
(commsplatform.errors: `{"status", "title", "description"}` plus per-field `errors`), so a
client (and the schemathesis fuzz test) knows the shape of a 4xx or 503.
"""

from typing import Literal

from drf_spectacular import openapi
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status code.")
    title = serializers.CharField(help_text="The status code's reason phrase.")
    description = serializers.CharField(help_text="What went wrong, in one sentence.")

    class Meta:
        ref_name = "Error"

    def get_fields(self):
        # Added here, not as a class attribute: that would shadow Serializer.errors.
        fields = super().get_fields()
        fields["errors"] = serializers.DictField(
            required=False, help_text="Per-field messages when the input was invalid."
        )
        return fields


# Error responses every operation may give; 401/403 only where a permission is required.
ERROR_RESPONSES = {
    "400": "The input is invalid (see `errors`), or the body is not JSON.",
    "404": "No such resource.",
    "405": "The method is not allowed here.",
    "413": "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    "415": "The body is not JSON.",
    "429": "Throttled: retry after `Retry-After` seconds.",
    "503": "A backing service (Redis) is unavailable: retry after `Retry-After` seconds.",
}
AUTH_ERROR_RESPONSES = {
    "401": "No or invalid credentials.",
    "403": "Authenticated, but not allowed (staff only).",
}

GENERIC_NAMES = {"InputSerializer", "OutputSerializer", "FilterSerializer"}


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer, direction: Literal["request", "response"]) -> str:
        cls = serializer.__class__
        owner, _, name = cls.__qualname__.rpartition(".")
        if owner and name in GENERIC_NAMES:
            owner = owner.rpartition(".")[2].removesuffix("Api")
            return f"{owner}{name}"
        return super().get_serializer_name(serializer, direction)

    def map_parsers(self) -> list[str]:
        # The seed routes parse any Content-Type as JSON (media type "*/*"); what they
        # accept is a JSON body, so that is what the schema says.
        return list(dict.fromkeys("application/json" if m == "*/*" else m for m in super().map_parsers()))

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(ERROR_RESPONSES)
        auth = self.get_auth()
        if auth and {} not in auth:  # credentials are required ({} = anonymous allowed)
            errors.update(AUTH_ERROR_RESPONSES)
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code]["description"] = description
        return dict(sorted(responses.items()))
