"""Input rules shared by the apps' serializers and admin forms.

Anything a user types that can end up in a mail header (a campaign's subject, a
recipient's name rendered into it by `{{ name }}`, an address) must not carry a line
break: "Promo\\r\\nBcc: x@example.com" would add a header to every mail sent. The API and
the admin refuse such values (400 naming the field); the message builder in
notifications/sending.py defends itself as well, for rows that got in some other way.
"""

import re
from typing import Any

from django.core.exceptions import ValidationError

# Unicode category Cc (C0 controls incl. TAB/CR/LF, DEL, C1 controls incl. NEL) and the
# Unicode line and paragraph separators, which str.splitlines() also treats as line ends.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def validate_no_control_characters(value: str) -> None:
    """Django/DRF validator: refuse line breaks and other control characters."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("Must not contain line breaks or other control characters.", code="control_characters")


class NoControlCharactersAdminMixin:
    """ModelAdmin mixin: the form fields named in `no_control_characters` get the validator."""

    no_control_characters: tuple[str, ...] = ()

    def formfield_for_dbfield(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and db_field.name in self.no_control_characters:
            field.validators.append(validate_no_control_characters)
        return field
