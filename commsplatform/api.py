"""Small pieces every app's API shares."""

from rest_framework import serializers

from .parsers import AnyContentTypeJSONParser

__all__ = ["AnyContentTypeJSONParser", "StrictCharField"]


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
