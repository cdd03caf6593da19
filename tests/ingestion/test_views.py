from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion.documents import clean_name
from ingestion.models import Collection, Document
from tests.conftest import login
from tests.factories import make_document, make_pdf, make_user


def test_anonymous_users_are_sent_to_login(client, people) -> None:
    for url in [
        reverse("ingestion:collections"),
        reverse("ingestion:collection", args=[people.legal.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_collections_list_shows_only_granted_collections(people) -> None:
    page = login(people.teammate).get(reverse("ingestion:collections")).content.decode()
    assert "Legal" in page and "Sales" not in page
    assert "New collection" not in page


def test_an_admin_creates_a_collection_granted_to_groups(people) -> None:
    admin = make_user("boss", is_superuser=True)
    legal_group = people.legal.groups.get()
    response = login(admin).post(
        reverse("ingestion:collection_create"), {"name": "Contracts", "groups": [legal_group.pk]}
    )
    contracts = Collection.objects.get(name="Contracts")
    assert response.url == reverse("ingestion:collection", args=[contracts.pk])
    assert list(contracts.groups.all()) == [legal_group]
    assert admin in contracts.managers.all()


def test_employees_cannot_create_collections(people) -> None:
    response = login(people.teammate).post(reverse("ingestion:collection_create"), {"name": "X"})
    assert response.status_code == 403
    assert not Collection.objects.filter(name="X").exists()


def test_a_duplicate_collection_name_is_explained(people) -> None:
    admin = make_user("boss", is_superuser=True)
    response = login(admin).post(
        reverse("ingestion:collection_create"), {"name": "Legal"}, follow=True
    )
    assert "already exists" in response.content.decode()


def test_the_collection_page_shows_status_and_errors(people) -> None:
    document = make_document(people.legal, "x.pdf", b"junk")
    Document.objects.filter(pk=document.pk).update(status="failed", error="The PDF is broken.")
    page = login(people.teammate).get(reverse("ingestion:collection", args=[people.legal.pk]))
    assert "The PDF is broken." in page.content.decode()
    assert 'name="files"' not in page.content.decode()  # readers do not get the upload form


def test_upload_refuses_unsupported_types_per_document(people) -> None:
    login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("tool.exe", b"MZ")]},
    )
    document = Document.objects.get()
    assert document.status == Document.Status.FAILED
    assert "not supported" in document.error


def test_upload_stores_files_under_generated_names(people) -> None:
    """Reliability #22: a `../` name is stored under a generated name."""
    login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("../../etc/passwd.txt", b"hello")]},
    )
    document = Document.objects.get()
    assert document.original_name == "passwd.txt"
    assert "passwd" not in document.file.name and ".." not in document.file.name


def test_hostile_names_become_plain_labels() -> None:
    """Reliability #22: backslash paths, CR/LF and overlong names become plain labels."""
    assert clean_name("..\\..\\win.ini") == "win.ini"
    assert clean_name("evil\r\nSet-Cookie: x.txt") == "evilSet-Cookie: x.txt"
    assert len(clean_name("é" * 300 + ".pdf")) == 200
    assert clean_name("../") == "unnamed"


def test_upload_without_files_is_explained(people) -> None:
    response = login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]), {}, follow=True
    )
    assert "Choose at least one file." in response.content.decode()


def test_upload_refuses_too_many_files(people, settings) -> None:
    """Reliability #16: too many files in one upload are refused."""
    settings.MAX_FILES_PER_UPLOAD = 2
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 10
    files = [SimpleUploadedFile(f"{n}.txt", b"x") for n in range(3)]
    response = login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]), {"files": files}, follow=True
    )
    assert "At most 2 files per upload." in response.content.decode()
    assert not Document.objects.exists()


def test_upload_refuses_oversized_files(people, settings) -> None:
    """Reliability #16: an oversized file is refused and nothing is stored."""
    settings.MAX_UPLOAD_BYTES = 10
    response = login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("big.txt", b"x" * 11)]},
        follow=True,
    )
    assert "larger than" in response.content.decode()
    assert not Document.objects.exists()


def test_a_pdf_opens_inline_and_other_files_download(people) -> None:
    """Reliability #15: only PDFs open inline; other files download as sandboxed attachments."""
    pdf = make_document(people.legal, "a.pdf", make_pdf(["x"]))
    html = make_document(people.legal, "a.html", b"<script>alert(1)</script>")
    client = login(people.teammate)
    response = client.get(reverse("ingestion:document_file", args=[pdf.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    response = client.get(reverse("ingestion:document_file", args=[html.pk]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]
