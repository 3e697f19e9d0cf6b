"""RFC 5322 messages that cannot carry an injected header.

Control characters in the subject become spaces and a subject that is not short plain
ASCII is RFC 2047-encoded; From/To must each be one valid plain ASCII address (else
InvalidMessage: that delivery fails permanently, the batch goes on). The API and the
admin refuse line breaks in those fields already.
"""

import quopri
import re
from email.header import Header
from email.utils import formataddr, formatdate, getaddresses

from commsplatform.validators import CONTROL_CHARACTERS


class InvalidMessage(ValueError):
    """A message that cannot be sent as given (an address that is not one plain address,
    a header value with a line break): a permanent failure of that one delivery."""


# The Subject line may be at most 998 characters (RFC 5322 2.1.1); longer ones are encoded
# (and so folded) like non-ASCII ones.
_MAX_RAW_SUBJECT = 998 - len("Subject: ")


# One plain addr-spec: RFC 5322 atext and dots, "@", a domain of letters, digits, hyphens
# and dots. No whitespace, quotes, commas, angle brackets or control characters, so it can
# be neither a list nor a display name nor carry a line break. (Written out because
# Django's validate_email costs ~8 µs an address, 25× the rest of build_message; what
# this lets through that is still malformed, the server refuses with a 5xx.)
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _address(value: str, role: str) -> str:
    """A header/envelope address: exactly one plain ASCII addr-spec (no display name, no
    list), since it is written raw into To/From and into MAIL FROM/RCPT TO."""
    if not _PLAIN_ADDRESS.fullmatch(value):
        raise InvalidMessage(f"{role} address {value!r} is not one plain address")
    return value


def sender_address(value: str) -> tuple[str, str]:
    """(envelope address, From header) of a sender given as `addr` or `Name <addr>`
    (DEFAULT_FROM_EMAIL often carries a display name). The name is quoted or RFC
    2047-encoded by `formataddr`; a name with control characters or an address that is
    not one plain address raises InvalidMessage."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return value, value
    parsed = getaddresses([value]) if not CONTROL_CHARACTERS.search(value) else []
    name, addr = parsed[0] if len(parsed) == 1 else ("", "")
    if not name or not _PLAIN_ADDRESS.fullmatch(addr):
        raise InvalidMessage(f"From address {value!r} is neither one plain address nor 'Name <address>'")
    return addr, formataddr((name, addr), charset="utf-8")


def _subject_header(subject: str) -> str:
    # A line break (or any control character) in a subject, typed by an operator or
    # rendered from a recipient's name, would start a new header: it becomes a space.
    subject = CONTROL_CHARACTERS.sub(" ", subject)
    if subject.isascii() and len(subject) <= _MAX_RAW_SUBJECT:
        return subject
    # RFC 2047 encoded words, folded with CRLF + space (Header's default fold is a bare LF).
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")


def build_message(
    *, from_addr: str, to_addr: str, subject: str, body: str, message_id: str, date: str | None = None
) -> bytes:
    """An RFC 5322 text/plain message, assembled directly (email.message is 10× slower).

    It cannot carry an injected header whatever it is given: the subject has its control
    characters replaced and is RFC 2047-encoded when it is not plain short ASCII; the
    addresses must each be one valid plain address and the Message-ID and Date free of
    control characters, or InvalidMessage is raised.
    """
    from_header = sender_address(from_addr)[1]
    _address(to_addr, "To")
    date = date or formatdate(usegmt=True)
    for name, value in (("Message-ID", message_id), ("Date", date)):
        if not value.isascii() or CONTROL_CHARACTERS.search(value):
            raise InvalidMessage(f"{name} {value!r} contains control or non-ASCII characters")
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if body.isascii():
        encoding, payload = "7bit", body.encode()
    else:
        encoding, payload = "quoted-printable", quopri.encodestring(body.encode(), quotetabs=False)
    head = (
        f"From: {from_header}\r\nTo: {to_addr}\r\nSubject: {_subject_header(subject)}\r\n"
        f"Date: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode() + payload.replace(b"\n", b"\r\n")
