"""An upload cut off mid-request (the browser navigates away, the network drops) is refused as a
whole: the body Django reads is shorter than its Content-Length. And refusals reach the user."""

import io
import logging
import socket
from http.client import HTTPResponse

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from assistant.models import AuditEvent
from ingestion.models import Document
from tests.conftest import login

pytestmark = pytest.mark.embedded

CLOSING = f"--{BOUNDARY}--\r\n".encode()


def six_files(csrf_token: str = "") -> bytes:
    files = [SimpleUploadedFile(f"{n}.txt", f"Rule number {n}. ".encode() * 200) for n in range(6)]
    data = {"csrfmiddlewaretoken": csrf_token, "files": files, "paths": [""] * 6}
    return encode_multipart(BOUNDARY, data)


def post_cut(client, collection, body: bytes, sent: int):
    """A request that announces the whole body but whose connection ends after `sent` bytes."""
    return client.generic(
        "POST",
        reverse("ingestion:upload", args=[collection.pk]),
        body,
        content_type=MULTIPART_CONTENT,
        **{"wsgi.input": io.BytesIO(body[:sent]), "CONTENT_LENGTH": str(len(body))},
    )


def test_the_whole_body_uploads_every_file(people) -> None:
    body = six_files()
    response = post_cut(login(people.owner), people.legal, body, len(body))
    assert response.status_code == 302
    assert Document.objects.count() == 6


@pytest.mark.parametrize(
    "cut",
    [
        lambda body: len(body) * 6 // 10,  # in the fourth file
        lambda body: body.index(b'name="files"; filename="3.txt"'),  # in a part's headers
        lambda body: len(body) - len(CLOSING) - 10,  # in the last field, every file whole
        lambda body: len(body) - len(CLOSING),  # only the closing boundary missing
    ],
    ids=["in-a-file", "in-headers", "in-the-last-field", "before-the-closing-boundary"],
)
def test_a_body_cut_off_creates_nothing_and_says_so(people, caplog, cut) -> None:
    body = six_files()
    client = login(people.owner)
    with caplog.at_level(logging.WARNING, logger="ingestion.views"):
        response = post_cut(client, people.legal, body, cut(body))
    assert response.status_code == 302
    assert not Document.objects.exists()
    assert not AuditEvent.objects.filter(action="upload").exists()
    page = client.get(response.url).content.decode()
    assert "The upload was cut off after" in page and "Nothing was uploaded" in page
    assert "uploaded; ingestion has started" not in page
    assert f"of {len(body):,} bytes" in caplog.text


def test_an_outsider_gets_a_404_and_nothing_is_read(people) -> None:
    body = six_files()
    response = post_cut(login(people.outsider), people.legal, body, len(body) // 2)
    assert response.status_code == 404
    assert not Document.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_real_connection_closed_mid_upload_creates_nothing(people, live_server) -> None:
    client = login(people.owner)
    client.get(reverse("ingestion:collection", args=[people.legal.pk]))  # sets the CSRF cookie
    token, session = client.cookies["csrftoken"].value, client.cookies["sessionid"].value
    body = six_files(token)
    host, port = live_server.thread.host, live_server.thread.port
    with socket.create_connection((host, port), timeout=30) as conn:
        path = reverse("ingestion:upload", args=[people.legal.pk])
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Cookie: sessionid={session}; csrftoken={token}\r\n"
            f"Content-Type: {MULTIPART_CONTENT}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) * 6 // 10]
        )
        conn.shutdown(socket.SHUT_WR)  # the browser went away mid-body
        response = HTTPResponse(conn)
        response.begin()
    assert response.status == 302
    assert not Document.objects.exists()


def test_too_many_files_are_explained_with_csrf_checks_on(people, settings) -> None:
    # The CSRF check reads the body too: the refusal must come before it, not as a bare 400.
    """Reliability #16: too many files are refused with a message, CSRF checks on."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    settings.MAX_FILES_PER_UPLOAD = 2
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.owner)
    client.get(reverse("ingestion:collection", args=[people.legal.pk]))
    files = [SimpleUploadedFile(f"{n}.txt", b"x") for n in range(3)]
    response = client.post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, "files": files},
        follow=True,
    )
    assert response.status_code == 200
    assert "At most 2 files per upload." in response.content.decode()
    assert not Document.objects.exists()


def test_the_upload_script_is_sent_to_the_page_that_shows_the_messages(people) -> None:
    # A redirect the script's request followed would render (and use up) the messages there.
    client = login(people.owner)
    url = reverse("ingestion:upload", args=[people.legal.pk])
    files = [SimpleUploadedFile("a.txt", b"A rule.")]
    response = client.post(url, {"files": files}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("ingestion:collection", args=[people.legal.pk])
    page = client.get(response["HX-Redirect"]).content.decode()
    assert "1 file(s) uploaded; ingestion has started." in page
