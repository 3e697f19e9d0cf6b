"""Per-recipient unsubscribe links (RFC 8058 one-click) for campaign mail.

A token is `<campaign id>.<recipient id>:<signature>`: django.core.signing with its own
salt, so no other signed value of the project is a valid token, and without expiry (a
mail read a year later still unsubscribes). Rotating SECRET_KEY keeps old links valid
while the old key is in SECRET_KEY_FALLBACKS.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.utils.encoding import force_bytes

from users.models import Recipient

from .models import Suppression
from .suppression import suppression_add

_SALT = "notifications.unsubscribe"


class BadToken(Exception):
    """Not a token this platform signed (forged, altered, truncated)."""


@dataclass(frozen=True)
class UnsubscribeToken:
    campaign_id: int
    recipient_id: int


_mac: hmac.HMAC | None = None


def _token_mac() -> hmac.HMAC:
    """The HMAC `signing.Signer(salt=_SALT)` signs with, keyed once per process: the Signer
    derives its key (a SHA-256 of salt and SECRET_KEY) and builds itself on every call,
    which was most of the cost of a campaign mail's unsubscribe headers."""
    global _mac
    if _mac is None:
        signer = signing.Signer(salt=_SALT)
        key = hashlib.sha256(force_bytes(signer.salt) + b"signer" + force_bytes(signer.key)).digest()
        _mac = hmac.new(key, digestmod=hashlib.sha256)
    return _mac


def _forget_key(*, setting: str, **kwargs) -> None:
    global _mac
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _mac = None


setting_changed.connect(_forget_key)


def unsubscribe_token(*, campaign_id: int, recipient_id: int) -> str:
    """`signing.Signer(salt=_SALT).sign(...)`, byte for byte (read back by `unsubscribe_token_read`)."""
    value = f"{campaign_id}.{recipient_id}"
    mac = _token_mac().copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


def unsubscribe_token_read(token: str) -> UnsubscribeToken:
    """The ids a token carries; BadToken whatever is wrong with it."""
    try:
        value = signing.Signer(salt=_SALT).unsign(token)
        campaign, recipient = value.split(".")
        return UnsubscribeToken(int(campaign), int(recipient))
    except (signing.BadSignature, ValueError) as exc:
        raise BadToken from exc


def unsubscribe_url(*, campaign_id: int, recipient_id: int) -> str:
    """The public one-click link: PUBLIC_BASE_URL/u/<token> (ASCII, no CR/LF: ids and base64)."""
    token = unsubscribe_token(campaign_id=campaign_id, recipient_id=recipient_id)
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/u/{token}"


def unsubscribe_headers(url: str) -> list[tuple[str, str]]:
    """List-Unsubscribe (the link, and UNSUBSCRIBE_MAILTO when set) and List-Unsubscribe-Post."""
    value = f"<{url}>"
    if settings.UNSUBSCRIBE_MAILTO:
        value += f", <mailto:{settings.UNSUBSCRIBE_MAILTO}>"
    return [("List-Unsubscribe", value), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]


def unsubscribe(*, token: str) -> None:
    """The one-click unsubscribe: the token's recipient's address goes on the suppression
    list (reason `unsubscribe`; idempotent). BadToken if the token is not ours or its
    recipient no longer exists."""
    ids = unsubscribe_token_read(token)
    found = Recipient.objects.filter(pk=ids.recipient_id).values_list("email", flat=True)
    if not found:
        raise BadToken
    address = found[0]
    if address:
        suppression_add(
            address=address,
            reason=Suppression.Reason.UNSUBSCRIBE,
            source=f"unsubscribe link (campaign {ids.campaign_id})",
        )
