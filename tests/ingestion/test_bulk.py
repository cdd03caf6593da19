"""Bulk upload through HTTP: ZIPs, folders, duplicates, versions, tombstones, progress."""

import io
import threading
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from assistant.models import AuditEvent
from ingestion import index, pipeline
from ingestion.models import Document, Tombstone
from ingestion.uploads import SizeLimit
from tests.conftest import login, shared_fixture
from tests.factories import ingest_now, make_pdf, make_zip, remove_deleted

Status = Document.Status


def post(client, collection, files, **extra):
    url = reverse("ingestion:upload", args=[collection.pk])
    return client.post(url, {"files": files, **extra}, follow=True)


def ingest_all() -> None:
    for pk in Document.objects.filter(status=Status.QUEUED).values_list("pk", flat=True):
        ingest_now(pk)


def test_a_zip_becomes_documents_that_keep_their_folders(people) -> None:
    """Reliability #22: archive members with `..` and absolute paths are never extracted."""
    archive = make_zip(
        {
            "policies/hr/leave.txt": b"Leave is 25 days a year.",
            "policies/it.md": b"# IT\n\nPasswords rotate yearly.",
            "__MACOSX/._leave.txt": b"junk",
            "../../evil.txt": b"escape",
            "/etc/abs.txt": b"absolute",
        }
    )
    post(login(people.owner), people.legal, [SimpleUploadedFile("bundle.zip", archive)])
    rows = {(d.path, d.original_name): d for d in Document.objects.all()}
    leave = rows[("bundle.zip/policies/hr", "leave.txt")]
    assert rows[("bundle.zip/policies", "it.md")].status == Status.QUEUED
    unsafe = [d for d in rows.values() if "unsafe path" in d.error]
    assert len(unsafe) == 2 and all(not d.file for d in unsafe)
    assert len(rows) == 4  # the resource fork is dropped silently
    ingest_now(leave.pk)
    leave.refresh_from_db()
    assert leave.status == Status.READY and index.count(leave.pk) == leave.chunks


def test_a_zip_bomb_is_refused_from_its_directory(people, settings) -> None:
    """Reliability #17: a ZIP bomb is refused from its central directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", b"0" * 30_000_000)
    post(login(people.owner), people.legal, [SimpleUploadedFile("b.zip", buffer.getvalue())])
    [document] = Document.objects.all()
    assert document.status == Status.FAILED and "ZIP bomb" in document.error


def test_a_zip_with_too_many_members_is_refused(people, settings) -> None:
    """Reliability #17: an archive with too many members is refused."""
    settings.MAX_FILES_PER_ARCHIVE = 3
    archive = make_zip({f"{n}.txt": b"x" for n in range(4)})
    post(login(people.owner), people.legal, [SimpleUploadedFile("many.zip", archive)])
    [document] = Document.objects.all()
    assert "more than 3" in document.error


def test_a_folder_upload_keeps_relative_paths(people) -> None:
    files = [SimpleUploadedFile("a.txt", b"Alpha."), SimpleUploadedFile("b.txt", b"Beta.")]
    post(login(people.owner), people.legal, files, paths=["Docs/2024/a.txt", "../../b.txt"])
    paths = dict(Document.objects.values_list("original_name", "path"))
    assert paths == {"a.txt": "Docs/2024", "b.txt": ""}


def test_a_zip_inside_an_uploaded_folder_keeps_that_folder(people) -> None:
    archive = make_zip({"old/notes.txt": b"Old notes."})
    files = [SimpleUploadedFile("archive.zip", archive)]
    post(login(people.owner), people.legal, files, paths=["handbook/archive.zip"])
    assert Document.objects.get().path == "handbook/archive.zip/old"


def test_identical_content_is_skipped_as_duplicate(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile("a.txt", b"Same words.")])
    post(client, people.legal, [SimpleUploadedFile("copy.txt", b"Same words.")])
    copy = Document.objects.get(original_name="copy.txt")
    assert copy.status == Status.SKIPPED and "duplicate of a.txt" in copy.error
    page = client.get(reverse("ingestion:collection", args=[people.legal.pk])).content.decode()
    assert "Skipped as a duplicate of a.txt" in page


def test_a_changed_file_replaces_the_old_version_once_ready(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile("faq.txt", b"Lunch is at noon.")])
    ingest_all()
    old = Document.objects.get()
    post(client, people.legal, [SimpleUploadedFile("faq.txt", b"Lunch is at one o'clock.")])
    new = Document.objects.exclude(pk=old.pk).get()
    assert new.replaces_id == old.pk
    # Until the new version is written, the old one still answers.
    assert index.count(old.pk) == old.chunks > 0
    ingest_now(new.pk)
    assert not Document.objects.filter(pk=old.pk).exists()
    assert index.count(old.pk) == 0 and index.count(new.pk) > 0
    assert AuditEvent.objects.filter(action="delete", detail__superseded_by=new.pk).exists()


def test_a_failed_new_version_leaves_the_old_one_in_place(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile("r.pdf", make_pdf(["Refunds: 14 days."]))])
    ingest_all()
    old = Document.objects.get()
    post(client, people.legal, [SimpleUploadedFile("r.pdf", b"%PDF-1.4 broken")])
    ingest_all()
    assert Document.objects.get(pk=old.pk).status == Status.READY
    assert index.count(old.pk) == old.chunks


def test_deleting_leaves_a_tombstone_that_refuses_the_same_content(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile("gone.txt", b"Obsolete rule.")])
    ingest_all()
    document = Document.objects.get()
    client.post(reverse("ingestion:document_delete", args=[document.pk]))
    remove_deleted()
    assert index.count(document.pk) == 0 and not document.file.storage.exists(document.file.name)
    assert Tombstone.objects.filter(sha256=document.sha256, name="gone.txt").exists()
    post(client, people.legal, [SimpleUploadedFile("again.txt", b"Obsolete rule.")])
    again = Document.objects.get()
    assert again.status == Status.SKIPPED and "was deleted" in again.error
    assert index.count(again.pk) == 0


def test_deleting_a_whole_collection_removes_every_point_and_file(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile(f"{n}.txt", b"Rule %d." % n) for n in range(3)])
    ingest_all()
    documents = list(Document.objects.all())
    assert all(index.count(d.pk) > 0 for d in documents)
    client.post(reverse("ingestion:collection_clear", args=[people.legal.pk]))
    assert set(Document.objects.values_list("status", flat=True)) == {Status.DELETING}
    page = client.get(reverse("ingestion:collection", args=[people.legal.pk])).content.decode()
    assert page.count("Deleting") == 3 and "Last upload" not in page  # no "0 of 3 finished"
    # Clearing again or re-ingesting everything leaves what is being deleted alone.
    client.post(reverse("ingestion:collection_clear", args=[people.legal.pk]))
    client.post(reverse("ingestion:collection_reingest", args=[people.legal.pk]))
    assert set(Document.objects.values_list("status", flat=True)) == {Status.DELETING}
    assert not index.search("Rule", [people.legal.pk], 5)  # hidden before the worker runs
    remove_deleted()
    assert not Document.objects.exists()
    assert all(index.count(d.pk) == 0 for d in documents)
    assert not any(d.file.storage.exists(d.file.name) for d in documents)
    assert AuditEvent.objects.filter(action="delete").count() == 3


def test_outsiders_and_readers_cannot_clear_or_reingest(people) -> None:
    for user in (people.teammate, people.outsider):
        client = login(user)
        for name in ("ingestion:collection_clear", "ingestion:collection_reingest"):
            response = client.post(reverse(name, args=[people.legal.pk]))
            assert response.status_code in (403, 404)


def test_reingesting_a_collection_queues_every_document(people) -> None:
    client = login(people.owner)
    post(client, people.legal, [SimpleUploadedFile("a.txt", b"A rule.")])
    ingest_all()
    client.post(reverse("ingestion:collection_reingest", args=[people.legal.pk]))
    assert Document.objects.get().status == Status.QUEUED


def test_the_progress_bar_counts_the_last_batch(people) -> None:
    client = login(people.owner)
    files = [
        SimpleUploadedFile("a.txt", b"Alpha rule."),
        SimpleUploadedFile("b.txt", b"Beta rule."),
        SimpleUploadedFile("c.exe", b"MZ"),
    ]
    post(client, people.legal, files)
    url = reverse("ingestion:collection", args=[people.legal.pk])
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<progress max="3" value="1">' in partial and "hx-trigger" in partial
    ingest_all()
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<progress max="3" value="3">' in partial and "1 failed" in partial
    assert "hx-trigger" not in partial


def test_mail_attachments_become_documents_of_their_own(people) -> None:
    mail = shared_fixture("email/fake-email-attachment.eml").read_bytes()
    post(login(people.owner), people.legal, [SimpleUploadedFile("m.eml", mail)])
    ingest_all()
    ingest_all()  # the attachment was queued by the first pass
    attachment = Document.objects.get(original_name="fake-attachment.txt")
    assert attachment.path == "m.eml" and attachment.status == Status.READY
    assert Document.objects.get(original_name="m.eml").status == Status.READY
    # A redelivered parse of the mail adds no second copy.
    mail_doc = Document.objects.get(original_name="m.eml")
    Document.objects.filter(pk=mail_doc.pk).update(status=Status.QUEUED)
    ingest_now(mail_doc.pk)
    assert Document.objects.filter(original_name="fake-attachment.txt").count() == 1


def test_an_encrypted_pdf_ends_encrypted_without_secrets_in_logs(people, caplog) -> None:
    """Reliability #20: status encrypted, no password or traceback in the logs."""
    pdf = make_pdf(["The launch date is secret."], password="hunter2")
    post(login(people.owner), people.legal, [SimpleUploadedFile("locked.pdf", pdf)])
    ingest_all()
    document = Document.objects.get()
    assert document.status == Status.ENCRYPTED and "password-protected" in document.error
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text


def test_a_type_mismatch_is_a_clear_error(people) -> None:
    """Reliability #14, #15: a zero-byte file and mismatched types end failed with a clear
    reason."""
    files = [
        SimpleUploadedFile("page.pdf", b"<html><body>Hello</body></html>"),
        SimpleUploadedFile("blob.docx", bytes(range(256)) * 40),
        SimpleUploadedFile("empty.txt", b""),
    ]
    post(login(people.owner), people.legal, files)
    ingest_all()
    errors = dict(Document.objects.values_list("original_name", "error"))
    assert "named .pdf but its content is text" in errors["page.pdf"]
    assert "named .docx" in errors["blob.docx"]
    assert errors["empty.txt"] == "The file is empty."


def test_hostile_names_are_stored_as_plain_labels(people) -> None:
    """Reliability #22: hostile names become plain labels; files are stored under generated
    names."""
    names = ["../../x.txt", "a\r\nSet-Cookie: y.txt", "é" * 300 + ".txt"]
    post(login(people.owner), people.legal, [SimpleUploadedFile(n, n.encode()) for n in names])
    for document in Document.objects.all():
        assert "\r" not in document.original_name and "/" not in document.original_name
        assert len(document.original_name) <= 200
        assert ".." not in document.file.name and "Cookie" not in document.file.name
    long_name = Document.objects.get(original_name__startswith="éé")
    assert long_name.extension == ".txt" and long_name.file.name.startswith("documents/")


def test_an_oversized_file_is_dropped_while_streaming(people, settings) -> None:
    """Reliability #16: an oversized file is dropped while streaming; the others are kept."""
    settings.MAX_UPLOAD_BYTES = 100_000
    files = [
        SimpleUploadedFile("big.txt", b"x" * 1_000_000),
        SimpleUploadedFile("small.txt", b"Small rule."),
    ]
    page = post(login(people.owner), people.legal, files).content.decode()
    assert "big.txt is larger than" in page
    assert list(Document.objects.values_list("original_name", flat=True)) == ["small.txt"]


def test_the_size_limit_stops_reading_at_the_first_chunk_past_it(settings) -> None:
    """Reliability #16: the upload handler stops at the first chunk past the limit, never buffering
    the rest."""
    import pytest
    from django.core.files.uploadhandler import SkipFile

    settings.MAX_UPLOAD_BYTES = 100
    handler = SizeLimit()
    handler.new_file("files", "big.txt", "text/plain", None)
    assert handler.receive_data_chunk(b"x" * 64, 0) == b"x" * 64
    with pytest.raises(SkipFile):
        handler.receive_data_chunk(b"x" * 64, 64)
    assert handler.too_large == ["big.txt"] and handler.dropped == [0]


def test_more_files_than_django_accepts_is_explained(people, settings) -> None:
    """Reliability #16: more files than DATA_UPLOAD_MAX_NUMBER_FILES are refused with a message."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    settings.MAX_FILES_PER_UPLOAD = 2
    files = [SimpleUploadedFile(f"{n}.txt", b"x") for n in range(3)]
    response = post(login(people.owner), people.legal, files)
    assert response.status_code == 200
    assert "At most 2 files per upload." in response.content.decode()
    assert not Document.objects.exists()


def test_uploads_are_audited(people) -> None:
    post(login(people.owner), people.legal, [SimpleUploadedFile("a.txt", b"Audited rule.")])
    event = AuditEvent.objects.get(action="upload")
    assert event.actor_ref == people.owner.pk and event.detail["status"] == "queued"


def test_a_third_version_replaces_the_second(people) -> None:
    client = login(people.owner)
    for text in (b"Version one.", b"Version two.", b"Version three."):
        post(client, people.legal, [SimpleUploadedFile("v.txt", text)])
        ingest_all()
    [document] = Document.objects.all()
    assert [h.text for h in index.search("version", [people.legal.pk], 5)] == ["Version three."]
    assert document.status == Status.READY


def test_files_after_an_oversized_one_keep_their_own_folders(people, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 100_000
    files = [
        SimpleUploadedFile("big.txt", b"x" * 1_000_000),
        SimpleUploadedFile("a.txt", b"Rule A."),
        SimpleUploadedFile("b.txt", b"Rule B."),
    ]
    paths = ["Big/big.txt", "Docs/a.txt", "Docs/2024/b.txt"]
    page = post(login(people.owner), people.legal, files, paths=paths).content.decode()
    assert "big.txt is larger than" in page
    folders = dict(Document.objects.values_list("original_name", "path"))
    assert folders == {"a.txt": "Docs", "b.txt": "Docs/2024"}


def upload_version(client, collection, text: bytes) -> Document:
    post(client, collection, [SimpleUploadedFile("v.txt", text)])
    return Document.objects.latest("pk")


def test_a_ready_version_retires_every_older_one_past_a_failed_one(people) -> None:
    client = login(people.owner)
    v1 = upload_version(client, people.legal, b"Version one.")
    ingest_now(v1.pk)
    v2 = upload_version(client, people.legal, b"Version two.")
    Document.objects.filter(pk=v2.pk).update(status=Status.FAILED, error="broken")
    v3 = upload_version(client, people.legal, b"Version three.")
    assert v3.replaces_id == v2.pk  # the newest earlier upload, failed or not
    ingest_now(v3.pk)
    assert not Document.objects.filter(pk=v1.pk).exists() and index.count(v1.pk) == 0
    assert [h.text for h in index.search("version", [people.legal.pk], 5)] == ["Version three."]


def test_an_older_version_finishing_last_is_retired_not_the_newer(people) -> None:
    client = login(people.owner)
    v1 = upload_version(client, people.legal, b"Version one.")
    ingest_now(v1.pk)
    v2 = upload_version(client, people.legal, b"Version two.")
    v3 = upload_version(client, people.legal, b"Version three.")
    pipeline.ingest(v3.pk)  # the newest finishes first
    assert not Document.objects.filter(pk=v1.pk).exists()
    ingest_now(v2.pk)
    assert list(Document.objects.values_list("pk", flat=True)) == [v3.pk]
    assert index.count(v2.pk) == 0 and index.count(v3.pk) > 0


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_same_named_members_of_one_upload_are_distinct_documents(people) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", b"First notes about lunch.")
        z.writestr("notes.txt", b"Second notes about parking.")  # zip allows a repeated name
    post(login(people.owner), people.legal, [SimpleUploadedFile("b.zip", archive.getvalue())])
    ingest_all()
    rows = Document.objects.filter(original_name="notes.txt")
    assert [d.status for d in rows] == [Status.READY, Status.READY]
    assert all(d.replaces_id is None for d in rows)


def test_same_named_mail_attachments_are_distinct_documents(people, tmp_path) -> None:
    from ingestion import documents
    from ingestion.parsing import Attachment

    parent = post(login(people.owner), people.legal, [SimpleUploadedFile("m.txt", b"Mail.")])
    parent = Document.objects.get()
    files = []
    for n, text in enumerate((b"Scan of the first invoice.", b"Scan of the second invoice.")):
        (tmp_path / str(n)).write_bytes(text)
        files.append(Attachment(name="scan.txt", path=str(tmp_path / str(n))))
    documents.add_attachments(parent, files)
    ingest_all()
    scans = Document.objects.filter(original_name="scan.txt")
    assert [d.status for d in scans] == [Status.READY, Status.READY]


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_is_not_held_up_while_an_upload_is_stored(people, monkeypatch) -> None:
    from django.core.files.storage import FileSystemStorage
    from django.db import connection

    from ingestion import documents
    from tests.factories import PASSWORD

    storing, release, saved = threading.Event(), threading.Event(), []
    save = FileSystemStorage._save

    def slow_save(self: FileSystemStorage, name: str, content: object) -> str:
        saved.append(name)
        if len(saved) == 2:  # the second file: the first one's row could be written by now
            storing.set()
            release.wait(15)
        return save(self, name, content)

    def upload() -> None:
        files = [SimpleUploadedFile(f"{n}.txt", f"Rule {n}.".encode()) for n in range(2)]
        try:
            documents.upload(people.legal, files, people.owner)
        finally:
            connection.close()

    monkeypatch.setattr(FileSystemStorage, "_save", slow_save)
    uploading = threading.Thread(target=upload)
    uploading.start()
    try:
        assert storing.wait(30)
        started = time.monotonic()
        response = Client().post(
            reverse("login"), {"username": people.teammate.username, "password": PASSWORD}
        )
        took = time.monotonic() - started
    finally:
        release.set()
        uploading.join(30)
    assert response.status_code == 302 and took < 2, took
    assert Document.objects.count() == 2
