"""`{{ field }}` placeholders in message subjects and bodies (campaign mail), rendered fast.

A template is parsed once into literal and field parts; rendering 100,000 messages is
then a join per message. Only the recipient fields below are allowed; anything else
is refused when the campaign is created (400), never discovered while sending.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# API name → Recipient attribute.
FIELDS = {
    "id": "id",
    "username": "username",
    "name": "name",
    "lastName": "last_name",
    "email": "email",
    "mobile": "mobile",
    "deviceId": "device_id",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class CompiledTemplate:
    parts: tuple[tuple[bool, str], ...]  # (is_field, literal text or attribute name)

    def render(self, values, escape: Callable[[str], str] | None = None) -> str:
        """`values` has the Recipient attributes (an object or a mapping); `escape` (e.g.
        html.escape for an HTML body) is applied to the field values, not to the template."""
        get = values.get if isinstance(values, dict) else lambda a: getattr(values, a)
        if escape is None:
            return "".join(str(get(text) or "") if is_field else text for is_field, text in self.parts)
        return "".join(escape(str(get(text) or "")) if is_field else text for is_field, text in self.parts)


def unknown_fields(template: str) -> list[str]:
    return sorted({m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1) not in FIELDS})


@lru_cache(maxsize=256)
def compile_template(template: str) -> CompiledTemplate:
    bad = unknown_fields(template)
    if bad:
        raise TemplateError(f"unknown field(s) {', '.join(bad)}; allowed: {', '.join(FIELDS)}")
    parts: list[tuple[bool, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append((False, template[position : match.start()]))
        parts.append((True, FIELDS[match.group(1)]))
        position = match.end()
    if position < len(template):
        parts.append((False, template[position:]))
    return CompiledTemplate(tuple(parts))
