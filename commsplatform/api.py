"""Small pieces every app's API shares."""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from rest_framework import serializers

from .parsers import AnyContentTypeJSONParser

__all__ = ["AnyContentTypeJSONParser", "Route", "StrictCharField", "url_routes"]


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@dataclass(frozen=True)
class Route:
    path: str  # "api/v1/orders/", or "api/v1/user/{recipient_id}" when it takes parameters
    name: str  # "orders:list"
    parameters: tuple[str, ...]


def url_routes(patterns: Iterable[URLPattern | URLResolver] | None = None, prefix: str = "") -> Iterator[Route]:
    """Every named route of the URL conf (the root one by default), includes flattened,
    in URL-conf order. Regex routes are left out: they have no readable path."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        if not isinstance(pattern.pattern, RoutePattern):
            continue
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            namespace = f"{pattern.namespace}:" if pattern.namespace else ""
            for inner in url_routes(pattern.url_patterns, route):
                yield Route(inner.path, namespace + inner.name, inner.parameters)
        elif pattern.name:
            parameters = tuple(match.group(2) for match in _CONVERTER.finditer(route))
            yield Route(_CONVERTER.sub(r"{\2}", route), pattern.name, parameters)


_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
