"""Header injection: nothing a user types reaches a mail header raw.

The sender tests insert hostile campaigns and recipients straight into the database
(bypassing the API's validation) and read the raw DATA a real SMTP server received, so
they prove the message builder's own defence.
"""

import email.header

import pytest
from django.db import transaction

from campaigns.models import Campaign
from notifications.models import Delivery
from notifications.sending import deliveries_send
from notifications.services import deliveries_route
from users.models import Recipient

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",  # campaign mail: the recipient's signed link (RFC 8058)
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
]


def _raw_headers(raw: bytes) -> list[tuple[str, str]]:
    """(name, unfolded value) of each header line exactly as received; every line must
    end in CRLF (a bare CR or LF in the head is an injection in some servers' eyes)."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, raw
    lines = head.split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines), head
    assert all(len(line) <= 998 for line in lines)  # RFC 5322's line limit
    headers: list[tuple[str, str]] = []
    for line in lines:
        text = line.decode("ascii")
        if text[:1] in (" ", "\t"):  # folded continuation of the previous header
            name, value = headers[-1]
            headers[-1] = (name, value + text)
        else:
            name, _, value = text.partition(":")
            headers.append((name, value.strip()))
    return headers


def _decoded(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


def _send_campaign(*, subject: str, body: str = "Hello", from_email: str = "test@test.com") -> Campaign:
    campaign = Campaign.objects.create(
        name="Hostile",
        subject=subject,
        body=body,
        from_email=from_email,
        channels=["email"],
        status=Campaign.Status.SENDING,
    )
    with transaction.atomic():  # as the router runs: inside its inbox transaction
        deliveries_route(campaign_id=campaign.pk, recipient_ids=list(Recipient.objects.values_list("pk", flat=True)))
    ids = list(Delivery.objects.filter(campaign=campaign, status="pending").order_by("pk").values_list("pk", flat=True))
    deliveries_send(delivery_ids=ids)
    campaign.refresh_from_db()
    return campaign


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Promo\r\nBcc: x@example.com", "Promo  Bcc: x@example.com"),
        ("Promo\nBcc: x@example.com", "Promo Bcc: x@example.com"),
        ("Promo\rBcc: x@example.com", "Promo Bcc: x@example.com"),
        ("Grüße\r\nBcc: x@example.com", "Grüße  Bcc: x@example.com"),
        ("Promo\u2028Bcc: x@example.com\x1b\x85!", "Promo Bcc: x@example.com  !"),
        # rendered past the 998-character line limit: encoded and folded
        ("A" * 900 + " {{ name }}\r\nBcc: x@example.com", "A" * 900 + " " + "N" * 150 + "  Bcc: x@example.com"),
    ],
    ids=["crlf", "lf", "cr", "non-ascii", "unicode-separators", "over-998"],
)
def test_hostile_campaign_subject_adds_no_header(smtp_server, subject, expected):
    # given
    Recipient.objects.create(username="ann", name="N" * 150, email="ann@example.com")

    # when
    campaign = _send_campaign(subject=subject)

    # then
    [mail] = smtp_server.messages
    headers = _raw_headers(mail.raw)
    assert [name for name, _ in headers] == HEADERS
    assert _decoded(dict(headers)["Subject"]) == expected
    assert mail.rcpt_tos == ("ann@example.com",)
    assert (campaign.sent_count, campaign.failed_count) == (1, 0)


def test_hostile_recipient_fields_rendered_into_the_subject_add_no_header(smtp_server):
    # given: rows written straight to the database, past the API's validation
    Recipient.objects.create(
        username="mallory\r\nCc: u@example.com",
        name="Ann\r\nReply-To: evil@example.com",
        last_name="\nBcc: x@example.com",
        email="mallory@example.com",
    )

    # when
    campaign = _send_campaign(subject="Hi {{ name }} {{ lastName }} ({{ username }})", body="Dear {{ name }}")

    # then
    [mail] = smtp_server.messages
    headers = _raw_headers(mail.raw)
    assert [name for name, _ in headers] == HEADERS
    assert _decoded(dict(headers)["Subject"]) == (
        "Hi Ann  Reply-To: evil@example.com  Bcc: x@example.com (mallory  Cc: u@example.com)"
    )
    assert mail.rcpt_tos == ("mallory@example.com",)
    assert campaign.sent_count == 1


@pytest.mark.parametrize(
    "address",
    [
        "eve@example.com\r\nBcc: x@example.com",
        "eve@example.com\nBcc: x@example.com",
        "eve@example.com, x@example.com",
        "Eve <eve@example.com>",
        "évé@example.com",
    ],
    ids=["crlf", "lf", "list", "display-name", "non-ascii"],
)
def test_recipient_address_that_is_not_one_plain_address_fails_only_that_delivery(smtp_server, address):
    # given: a hostile address stored directly, and a good recipient in the same batch
    bad = Recipient.objects.create(username="eve", name="Eve", email=address)
    Recipient.objects.create(username="ann", name="Ann", email="ann@example.com")

    # when
    campaign = _send_campaign(subject="Hi {{ name }}")

    # then: the batch went on; the bad row failed permanently; nothing went to it
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("ann@example.com",)
    assert [name for name, _ in _raw_headers(mail.raw)] == HEADERS
    failed = Delivery.objects.get(recipient=bad)
    assert (failed.status, failed.smtp_code, failed.attempts) == ("failed", None, 1)
    assert "To address" in failed.smtp_response
    assert (campaign.sent_count, campaign.failed_count, campaign.status) == (1, 1, "sending")


def test_hostile_from_address_fails_the_deliveries_and_sends_nothing(smtp_server):
    # given
    Recipient.objects.create(username="ann", name="Ann", email="ann@example.com")
    Recipient.objects.create(username="bob", name="Bob", email="bob@example.com")

    # when
    campaign = _send_campaign(subject="Hi", from_email="news@example.com\r\nBcc: x@example.com")

    # then
    assert smtp_server.messages == []
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["failed", "failed"]
    assert (campaign.sent_count, campaign.failed_count) == (0, 2)


@pytest.mark.parametrize(
    ("from_email", "header"),
    [
        ("Shop <shop@example.com>", "Shop <shop@example.com>"),
        ('"Shop, Inc." <shop@example.com>', '"Shop, Inc." <shop@example.com>'),
        ("Café Ünï <shop@example.com>", "=?utf-8?b?Q2Fmw6kgw5xuw68=?= <shop@example.com>"),
    ],
    ids=["name", "quoted-comma", "non-ascii"],
)
def test_a_from_address_with_a_display_name_is_sent_from_its_address(smtp_server, from_email, header):
    # given a sender as DEFAULT_FROM_EMAIL is often written: "Name <address>"
    Recipient.objects.create(username="ann", name="Ann", email="ann@example.com")

    # when
    campaign = _send_campaign(subject="Hi", from_email=from_email)

    # then the envelope carries the plain address, the header the quoted or encoded name
    [mail] = smtp_server.messages
    assert mail.mail_from == "shop@example.com"
    headers = _raw_headers(mail.raw)
    assert [name for name, _ in headers] == HEADERS
    assert dict(headers)["From"] == header
    assert campaign.sent_count == 1


@pytest.mark.parametrize(
    "from_email",
    ["Shop <shop@example.com>, x@example.com", '"Shop\r\nBcc: x@example.com" <shop@example.com>', "Shop <>"],
    ids=["list", "line-break-in-name", "empty-address"],
)
def test_a_from_address_that_is_a_list_or_carries_a_header_sends_nothing(smtp_server, from_email):
    Recipient.objects.create(username="ann", name="Ann", email="ann@example.com")

    campaign = _send_campaign(subject="Hi", from_email=from_email)

    assert smtp_server.messages == []
    assert (campaign.sent_count, campaign.failed_count) == (0, 1)


# --- the API and the admin refuse such values ------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["username", "name", "last_name", "email", "mobile", "device_id"],
)
def test_user_api_refuses_a_line_break_in_any_field(api_client, field):
    # given
    body = {"username": "ada", "name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    body[field] = {"email": "ada@example.com\r\nBcc: x@example.com"}.get(field, "Ada\r\nBcc: x@example.com")

    # when
    response = api_client.post("/api/v1/users/", body, format="json")

    # then
    assert response.status_code == 400, response.content
    payload = response.json()
    assert set(payload) == {"status", "title", "description", "errors"}
    assert list(payload["errors"]) == [field]
    assert Recipient.objects.count() == 0


@pytest.mark.parametrize(
    ("admin_url", "model", "field", "fields"),
    [
        ("/admin/users/recipient/add/", Recipient, "name", {"username": "ada", "name": "Ada\r\nBcc: x@example.com"}),
        ("/admin/users/recipient/add/", Recipient, "last_name", {"username": "ada", "last_name": "L\nBcc: x"}),
        ("/admin/users/recipient/add/", Recipient, "username", {"username": "ada\rBcc: x"}),
    ],
)
def test_admin_refuses_a_line_break_in_a_recipient(django_user_model, client, admin_url, model, field, fields):
    # given
    admin = django_user_model.objects.create_superuser(username="root", email="root@example.com", password="x")
    client.force_login(admin)
    form = {"username": "", "name": "", "last_name": "", "email": "", "mobile": "", "device_id": ""}

    # when
    response = client.post(admin_url, {**form, **fields})

    # then
    assert response.status_code == 200  # the form again, with the error
    assert field in response.context["adminform"].form.errors
    assert model.objects.count() == 0


def test_admin_refuses_a_line_break_in_a_campaign_subject(django_user_model, client):
    # given
    admin = django_user_model.objects.create_superuser(username="root", email="root@example.com", password="x")
    client.force_login(admin)
    # a draft: its subject is editable (read-only once it may be sending)
    campaign = Campaign.objects.create(
        name="C", subject="Hi", body="b", from_email="test@test.com", status=Campaign.Status.DRAFT
    )

    # when
    response = client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/change/",
        {
            "name": "C",
            "subject": "Hi\r\nBcc: x@example.com",
            "body": "b",
            "from_email": "test@test.com",
            "channels": '["email"]',
        },
    )

    # then
    assert response.status_code == 200
    assert "subject" in response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.subject == "Hi"


# --- multipart parts: 7bit when nothing needs encoding, quoted-printable otherwise ----------
def _multipart(*, body: str, html: str) -> bytes:
    from notifications.message import build_message

    return build_message(
        from_addr="test@test.com", to_addr="ann@example.com", subject="Hi", body=body, message_id="<m@x>", html=html
    )


def _parts(raw: bytes) -> list[tuple[str, str, str]]:
    """(content type, transfer encoding, decoded content) of each part, after asserting
    that every line of the raw message ends in CRLF and is at most 998 characters."""
    import email
    import email.policy

    assert raw.endswith(b"\r\n")
    lines = raw[:-2].split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [
        (part.get_content_type(), part["Content-Transfer-Encoding"], part.get_content().replace("\r\n", "\n"))
        for part in message.iter_parts()  # type: ignore[attr-defined]
    ]


def test_ascii_parts_with_short_lines_are_sent_7bit_as_they_are():
    # when
    raw = _multipart(body="Dear Ann,\nsee you.\n", html='<p style="x">Dear <b>Ann</b></p>\n')

    # then: no encoding, the text verbatim with CRLF line ends
    assert _parts(raw) == [
        ("text/plain", "7bit", "Dear Ann,\nsee you.\n"),
        ("text/html", "7bit", '<p style="x">Dear <b>Ann</b></p>\n'),
    ]
    assert b'<p style="x">Dear <b>Ann</b></p>\r\n' in raw


@pytest.mark.parametrize(
    ("body", "html"),
    [
        ("Grüße, Zoë", "<p>Grüße</p>"),  # not ASCII
        ("x" * 1500, "<p>" + "y" * 2000 + "</p>"),  # a line longer than 998
        ("a\0b", "<p>a\0b</p>"),  # NUL is not 7bit data
    ],
)
def test_parts_that_are_not_7bit_data_are_quoted_printable_and_decode_back(body, html):
    # when
    raw = _multipart(body=body, html=html)

    # then
    assert _parts(raw) == [("text/plain", "quoted-printable", body), ("text/html", "quoted-printable", html)]


def test_a_part_that_contains_the_boundary_is_quoted_printable():
    from notifications.message import _part

    # given: a text that carries the message's boundary (it is random, but a part must
    # never be able to end the multipart early whatever it contains)
    boundary = "=_" + "ab" * 12
    text = f"--{boundary}\nContent-Type: text/html\n\nspoof"

    # when
    encoding, payload = _part(text, boundary)

    # then: quoted-printable, which cannot contain "=_"
    assert encoding == "quoted-printable"
    assert boundary.encode() not in payload
    assert _part("plain text", boundary) == ("7bit", b"plain text")
