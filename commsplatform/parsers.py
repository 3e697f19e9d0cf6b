"""The JSON parser every API view uses: orjson, with a cap on nesting depth.

DRF's JSONParser uses the standard library, whose decoder recurses once per level: a
body of 100,000 `[` ended in a RecursionError (a 500). orjson refuses more than 1,024
levels by itself, without recursing in Python; anything deeper than API_JSON_MAX_DEPTH
is refused here. No request of this API nests beyond a few levels. Like DRF's strict
mode, orjson refuses NaN and Infinity.
"""

import codecs
from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (iterative: no recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        raw = stream.read() if stream is not None else b""
        try:
            data = orjson.loads(raw if codecs.lookup(encoding).name == "utf-8" else raw.decode(encoding))
        except (LookupError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}")
        limit = settings.API_JSON_MAX_DEPTH
        if nests_deeper_than(data, limit):
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels")
        return data


class AnyContentTypeJSONParser(JSONParser):
    """Seed routes parse every body as JSON whatever its Content-Type, as the seeds did
    (`curl -d '{…}'` sends form-urlencoded)."""

    media_type = "*/*"
