"""Small pieces every app's API shares."""

from rest_framework import serializers
from rest_framework.parsers import JSONParser


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AnyContentTypeJSONParser(JSONParser):
    """Seed routes parse every body as JSON whatever its Content-Type, as the seeds did
    (`curl -d '{…}'` sends form-urlencoded)."""

    media_type = "*/*"
