"""RFC 5322 messages that cannot carry an injected header.

Control characters in the subject become spaces and a subject that is not short plain
ASCII is RFC 2047-encoded; From/To must each be one valid plain ASCII address (else
InvalidMessage: that delivery fails permanently, the batch goes on). The API and the
admin refuse line breaks in those fields already. Extra headers (List-Unsubscribe) must
be a known header name with a short printable-ASCII value. With an HTML part the message
is multipart/alternative: each part 7bit when it is ASCII with lines of at most 998
characters (the usual case: nothing to encode, nothing to decode), else quoted-printable,
under a random boundary that starts with "=_" (which quoted-printable text can never
contain) and that a 7bit part is checked not to contain.
"""

import quopri
import random
import re
from collections.abc import Sequence
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


# The headers a caller may add; any other name is refused rather than checked for safety.
EXTRA_HEADER_NAMES = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Precedence"})
_MAX_EXTRA_HEADER_VALUE = 900


def _extra_headers(headers: Sequence[tuple[str, str]]) -> str:
    lines = []
    for name, value in headers:
        if name not in EXTRA_HEADER_NAMES:
            raise InvalidMessage(f"header {name!r} is not one build_message may add")
        if not value.isascii() or CONTROL_CHARACTERS.search(value) or len(value) > _MAX_EXTRA_HEADER_VALUE:
            raise InvalidMessage(f"{name} {value!r} is not short printable ASCII")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines)


def _quoted_printable(text: str) -> bytes:
    return quopri.encodestring(text.encode(), quotetabs=False).replace(b"\n", b"\r\n")


# RFC 5322 2.1.1 / RFC 2045 2.7: 7bit data is ASCII without NUL in lines of at most 998
# characters (CR and LF only as CRLF: the text is normalised to LF first).
_MAX_LINE = 998


def _part(text: str, boundary: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, CRLF payload) of one part of a multipart message."""
    if (
        text.isascii()
        and "\0" not in text
        and boundary not in text
        and (len(text) <= _MAX_LINE or max(map(len, text.split("\n"))) <= _MAX_LINE)
    ):
        return "7bit", text.replace("\n", "\r\n").encode()
    return "quoted-printable", _quoted_printable(text)


def build_message(
    *,
    from_addr: str,
    to_addr: str,
    subject: str,
    body: str,
    message_id: str,
    date: str | None = None,
    html: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """An RFC 5322 message, assembled directly (email.message is 10× slower): text/plain,
    or multipart/alternative (text, then `html`) when `html` is given.

    It cannot carry an injected header whatever it is given: the subject has its control
    characters replaced and is RFC 2047-encoded when it is not plain short ASCII; the
    addresses must each be one valid plain address, the Message-ID and Date free of
    control characters, and `extra_headers` (name, value) pairs of EXTRA_HEADER_NAMES with
    printable ASCII values, or InvalidMessage is raised.
    """
    from_header = sender_address(from_addr)[1]
    _address(to_addr, "To")
    date = date or formatdate(usegmt=True)
    for name, value in (("Message-ID", message_id), ("Date", date)):
        if not value.isascii() or CONTROL_CHARACTERS.search(value):
            raise InvalidMessage(f"{name} {value!r} contains control or non-ASCII characters")
    extra = _extra_headers(extra_headers) if extra_headers else ""
    head = (
        f"From: {from_header}\r\nTo: {to_addr}\r\nSubject: {_subject_header(subject)}\r\n"
        f"Date: {date}\r\nMessage-ID: {message_id}\r\n{extra}MIME-Version: 1.0\r\n"
    )
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if html:
        # "=_" never occurs in quoted-printable output ("=" is always "=XX" or a soft
        # break), and a 7bit part is one that does not contain the boundary, so no part
        # can end the multipart early, guessed boundary or not: it need not be secret
        # (getrandbits, not os.urandom: a third of a µs instead of over one).
        boundary = f"=_{random.getrandbits(96):024x}"
        html = html.replace("\r\n", "\n").replace("\r", "\n")
        text_encoding, text_payload = _part(body, boundary)
        html_encoding, html_payload = _part(html, boundary)
        return b"".join(
            (
                (
                    f'{head}Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
                    f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Transfer-Encoding: {text_encoding}\r\n\r\n"
                ).encode(),
                text_payload,
                (
                    f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Transfer-Encoding: {html_encoding}\r\n\r\n"
                ).encode(),
                html_payload,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
    if body.isascii():
        encoding, payload = "7bit", body.encode()
    else:
        encoding, payload = "quoted-printable", quopri.encodestring(body.encode(), quotetabs=False)
    head += f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode() + payload.replace(b"\n", b"\r\n")
