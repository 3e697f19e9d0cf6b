"""The project's OpenAPI AutoSchema: unique component names for the per-view serializers.

Every API view nests its own `InputSerializer` / `OutputSerializer` (see STYLE.md), so
drf-spectacular's default naming (the class name without "Serializer") gave a dozen
different serializers the same component name "Output" or "InputRequest", and the
schema described most of them wrongly. A nested serializer with such a generic name is
named after its view instead: `CampaignRetryFailedApi.OutputSerializer` →
`CampaignRetryFailedOutput`. A `Meta.ref_name` or `@extend_schema_serializer(component_name=...)`
still wins.
"""

from drf_spectacular import openapi

GENERIC_NAMES = {"InputSerializer", "OutputSerializer", "FilterSerializer"}


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__
        owner, _, name = cls.__qualname__.rpartition(".")
        if owner and name in GENERIC_NAMES:
            owner = owner.rpartition(".")[2].removesuffix("Api")
            return f"{owner}{name}"
        return super().get_serializer_name(serializer, direction)
