"""`manage.py import_documents`: files and folders from the server's disk, as uploads."""

import io
import shutil
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from assistant import people as roles
from assistant.celery import app
from assistant.models import AuditEvent
from ingestion import index
from ingestion.models import Collection, Document
from tests.conftest import shared_fixture
from tests.factories import make_docx, make_pdf, make_user, make_xlsx, make_zip
from tests.ingestion.test_upgrade import held

pytestmark = pytest.mark.embedded
Status = Document.Status


@pytest.fixture(autouse=True)
def embedded(settings) -> None:
    """The embedded profile's rule (this process ingests unless the server holds the index),
    whichever profile the suite runs in; tests of the services profile's rule turn it off."""
    settings.EMBEDDED_WORKER = True


def run(*args: str) -> tuple[str, str]:
    """The command's stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_documents", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fails(*args: str) -> tuple[str, str, str]:
    """The error the command stops with (exit status 1 from a shell), its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("import_documents", *args, stdout=out, stderr=err)
    return str(error.value), out.getvalue(), err.getvalue()


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def make_share(root: Path) -> Path:
    """A folder as an admin's file share holds it: formats, subfolders, a ZIP, hidden files."""
    share = root / "handbook"
    write(share / "policies" / "leave.md", b"# Leave\n\nEmployees get 27 days of annual leave.")
    write(share / "policies" / "travel.pdf", make_pdf(["Travel is booked through the portal."]))
    write(share / "hr" / "2024" / "memo.docx", make_docx(["The board meets on Tuesdays."]))
    write(share / "hr" / "prices.xlsx", make_xlsx({"Prices": [["Item", "Price"], ["Tea", 3]]}))
    write(share / "readme.txt", b"Ask the front desk for a badge.")
    write(share / "archive.zip", make_zip({"old/rule.txt": b"Lunch is at noon."}))
    message = EmailMessage()
    message["Subject"] = "Parking"
    message.set_content("Visitors park on level -2.")
    message.add_attachment(b"Badges are blue.", maintype="text", subtype="plain", filename="b.txt")
    write(share / "mail" / "parking.eml", bytes(message))
    write(share / ".DS_Store", b"\x00\x01finder")
    write(share / ".git" / "config", b"[core]")
    write(share / "__MACOSX" / "._leave.md", b"\x00\x05resource fork")
    return share


def by_label(collection: Collection) -> dict[str, Document]:
    return {d.label: d for d in collection.documents.all()}


def test_a_folder_tree_is_imported_with_its_folders_as_labels(people, tmp_path) -> None:
    share = make_share(tmp_path)

    out, err = run("--collection", "Legal", str(share))

    assert "Ingesting in this process." in out
    documents = by_label(people.legal)
    assert sorted(documents) == [
        "handbook/archive.zip/old/rule.txt",  # a ZIP expands inside its folder
        "handbook/hr/2024/memo.docx",
        "handbook/hr/prices.xlsx",
        "handbook/mail/parking.eml",
        "handbook/mail/parking.eml/b.txt",  # an attachment: ingested before the command ends
        "handbook/policies/leave.md",
        "handbook/policies/travel.pdf",
        "handbook/readme.txt",
    ]  # hidden files, .git and __MACOSX are not sent
    for document in documents.values():
        assert document.status == Status.READY, (document.label, document.error)
        assert index.count(document.pk) == document.chunks > 0
    [hit] = index.search("How many days of annual leave?", [people.legal.pk], 1)
    assert hit.document_id == documents["handbook/policies/leave.md"].pk
    assert "8 ready, 0 skipped (already in the collection or deleted from it), 0 failed." in out
    assert "8 of 8 documents finished." in out
    assert err == ""
    # Audited as uploads by no one: the server's administrator ran it.
    uploads = AuditEvent.objects.filter(action=AuditEvent.Action.UPLOAD)
    assert uploads.count() == 8
    assert set(uploads.values_list("actor_username", flat=True)) == {""}


def test_lone_files_have_no_folder_and_user_is_the_uploader(people, tmp_path) -> None:
    note = write(tmp_path / "deep" / "folder" / "note.txt", b"Parking is on level -2.")

    run("--collection", "Legal", "--user", "owner", str(note))

    document = people.legal.documents.get()
    assert (document.label, document.uploaded_by) == ("note.txt", people.owner)
    upload = AuditEvent.objects.get(action=AuditEvent.Action.UPLOAD)
    assert upload.actor_username == "owner"


def test_bad_files_are_reported_with_their_reasons_and_the_command_fails(
    people, tmp_path, settings
) -> None:
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    share = tmp_path / "share"
    write(share / "good.txt", b"Refunds take 14 days.")
    write(share / "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    write(share / "notes.xyz", b"an unknown format")
    write(share / "empty.txt", b"")
    write(share / "huge.txt", b"x" * (1024 * 1024 + 1))
    (share / "gone.txt").symlink_to(share / "deleted.txt")

    error, out, err = fails("--collection", "Legal", str(share), str(tmp_path / "missing"))

    assert error == "6 file(s) failed to import; see above."
    assert err.splitlines() == [
        f"FAILED {tmp_path / 'missing'}: No such file or folder.",
        f"FAILED {share / 'gone.txt'}: The file cannot be read: No such file or directory.",
        f"FAILED {share / 'huge.txt'}: The file is larger than 1 MB.",
        "FAILED share/broken.pdf: " + by_label(people.legal)["share/broken.pdf"].error,
        "FAILED share/empty.txt: The file is empty.",
        "FAILED share/notes.xyz: Files of type .xyz are not supported.",
    ]
    assert "could not be read" in err
    assert "1 ready, 0 skipped (already in the collection or deleted from it), 6 failed." in out
    assert by_label(people.legal)["share/good.txt"].status == Status.READY
    assert "share/huge.txt" not in by_label(people.legal)  # dropped before upload, as the web does


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_running_it_again_skips_what_is_already_there(people, tmp_path) -> None:
    share = write(tmp_path / "share" / "rule.txt", b"Refunds take 14 days.").parent
    run("--collection", "Legal", str(share))
    write(share / "new.txt", b"Invoices are paid monthly.")

    terminal = Terminal()
    call_command("import_documents", "--collection", "Legal", str(share), stdout=terminal)

    out = terminal.getvalue()
    assert "1 ready, 1 skipped (already in the collection or deleted from it), 0 failed." in out
    assert "\r[" + "#" * 30 + "] 2 of 2 documents finished\n" in out  # a bar on a terminal
    statuses = {d.label: (d.status, d.error) for d in people.legal.documents.all()}
    assert statuses["share/new.txt"] == (Status.READY, "")
    assert statuses["share/rule.txt"][0] == Status.READY
    skipped = people.legal.documents.get(status=Status.SKIPPED)
    assert skipped.error == "Skipped as a duplicate of share/rule.txt."


def test_a_large_folder_goes_in_uploads_of_at_most_the_file_limit(people, tmp_path, settings):
    settings.MAX_FILES_PER_UPLOAD = 2
    share = tmp_path / "share"
    for n in range(4):
        write(share / f"rule-{n}.txt", f"Rule {n} applies on day {n * 7}.".encode())
    write(share / "rule-4.txt", b"Rule 0 applies on day 0.")  # a duplicate, in another upload

    out, _ = run("--collection", "Legal", str(share))

    documents = list(people.legal.documents.order_by("pk"))
    assert [len({d.batch for d in documents[i : i + 2]}) for i in (0, 2, 4)] == [1, 1, 1]
    assert len({d.batch for d in documents}) == 3
    assert "Stored 2 of 5 files.\nStored 4 of 5 files.\nStored 5 of 5 files." in out
    assert [d.status for d in documents] == [Status.READY] * 4 + [Status.SKIPPED]
    assert "4 ready, 1 skipped" in out


def test_create_makes_the_collection_with_its_readers(people, tmp_path) -> None:
    curator = make_user("curator")
    curator.groups.add(roles.role_group("collection_admin"))
    note = write(tmp_path / "note.txt", b"The archive room opens at nine.")

    args = ["--collection", "Board", "--create", "--groups", "Legal, Sales", str(note)]
    run(*args, "--user", "curator")

    board = Collection.objects.get(name="Board")
    assert sorted(board.groups.values_list("name", flat=True)) == ["Legal", "Sales"]
    assert list(board.managers.all()) == [curator]
    assert board.documents.get().status == Status.READY
    created = AuditEvent.objects.get(action=AuditEvent.Action.COLLECTION_CREATED)
    assert created.actor_username == "curator" and created.detail == {"groups": ["Legal", "Sales"]}
    # The same again: the collection exists now.
    assert fails(*args, "--user", "curator")[0] == "A collection named “Board” already exists."


def test_create_refuses_role_groups_unknown_groups_and_users_who_may_not_create(
    people, tmp_path
) -> None:
    curator = make_user("curator")
    curator.groups.add(roles.role_group("collection_admin"))
    roles.role_group("auditor")
    note = str(write(tmp_path / "note.txt", b"The archive room opens at nine."))
    create = ("--collection", "Board", "--create", note)

    assert fails(*create, "--user", "curator", "--groups", "Legal,Auditors")[0] == (
        "Auditors is a role, not a group of readers: it cannot be granted a collection."
    )
    assert fails(*create, "--user", "curator", "--groups", "Legal,Nope")[0] == (
        "No group named Nope."
    )
    needs_user = "--create needs --user naming someone who may create collections"
    assert fails(*create)[0].startswith(needs_user)
    assert fails(*create, "--user", "outsider")[0].startswith(needs_user)
    assert not Collection.objects.filter(name="Board").exists()
    assert not Document.objects.exists()


def test_an_unknown_collection_user_or_a_user_who_does_not_manage_it_is_refused(
    people, tmp_path
) -> None:
    note = str(write(tmp_path / "note.txt", b"The archive room opens at nine."))

    assert fails("--collection", "Nope", note)[0] == (
        "No collection named “Nope”; pass --create to create it."
    )
    assert fails("--collection", "Legal", "--user", "nobody", note)[0] == (
        "No active user named “nobody”."
    )
    assert fails("--collection", "Legal", "--user", "outsider", note)[0] == (
        "outsider does not manage the collection “Legal”."
    )
    assert fails("--collection", "Legal", "--groups", "Sales", note)[0].startswith(
        "--groups goes with --create"
    )
    assert not Document.objects.exists()


SHARED_FILES = (
    "pdf/fake-memo.pdf",
    "docx/word_sample.docx",
    "pptx/fake-power-point.pptx",
    "email/fake-email-attachment.eml",
    "xlsx/password_protected.xlsx",
)


def test_real_documents_from_the_shared_fixtures(people, tmp_path) -> None:
    share = tmp_path / "share"
    for relative in SHARED_FILES:
        (share / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_fixture(relative), share / relative)

    error, out, err = fails("--collection", "Legal", str(share))

    assert error == "1 file(s) failed to import; see above."
    encrypted = people.legal.documents.get(status=Status.ENCRYPTED)
    assert err == f"FAILED share/xlsx/password_protected.xlsx: {encrypted.error}\n"
    ready = people.legal.documents.filter(status=Status.READY)
    labels = {d.label for d in ready}
    assert {f"share/{f}" for f in SHARED_FILES if not f.startswith("xlsx/")} < labels
    assert ready.filter(path="share/email/fake-email-attachment.eml").exists()  # its attachment
    assert all(index.count(d.pk) == d.chunks > 0 for d in ready)


@pytest.mark.django_db(transaction=True)
def test_with_a_worker_running_the_command_queues_and_waits(
    people, tmp_path, settings, celery_worker
) -> None:
    settings.EMBEDDED_WORKER = False  # the services profile: Celery workers ingest
    share = make_share(tmp_path)

    out, err = run("--collection", "Legal", "--user", "owner", str(share))

    assert "A running worker ingests; waiting for it." in out
    assert "8 ready, 0 skipped" in out and "8 of 8 documents finished." in out
    assert err == ""
    for document in people.legal.documents.all():
        assert document.status == Status.READY, (document.label, document.error)
        assert not document.lease_owner.endswith(f"/{threading.get_ident()}")  # the worker's
        assert index.count(document.pk) == document.chunks > 0


def test_with_no_worker_in_the_services_profile_it_stops_unless_inline(
    people, tmp_path, settings, monkeypatch
) -> None:
    settings.EMBEDDED_WORKER = False
    monkeypatch.setattr(app.control, "ping", lambda **_: [])  # no worker answers
    note = str(write(tmp_path / "note.txt", b"The archive room opens at nine."))

    error, out, _ = fails("--collection", "Legal", note)
    assert error == (
        "No Celery worker answered within 3 s. Start one (celery -A assistant.celery worker), "
        "or pass --inline to ingest in this process."
    )
    assert not Document.objects.exists()  # stopped before anything was stored

    out, _ = run("--collection", "Legal", "--inline", note)
    assert "Ingesting in this process." in out
    assert people.legal.documents.get().status == Status.READY


def test_while_the_server_holds_the_index_its_worker_is_left_the_work(
    people, tmp_path, settings, monkeypatch
) -> None:
    settings.INDEX_PATH = tmp_path / "index"
    shard = tmp_path / "index" / settings.QDRANT_COLLECTION
    note = str(write(tmp_path / "note.txt", b"The archive room opens at nine."))
    run("--collection", "Legal", note)
    pongs: list[dict] = []
    monkeypatch.setattr(app.control, "ping", lambda **_: pongs)

    with held(shard):
        # No worker answers: the index's own message says what holds it and what to do.
        error, _, _ = fails("--collection", "Legal", note)
        assert error.startswith(f"The vector index {shard} is open in another process")
        # The server's worker answers: the command never opens the index, it waits.
        pongs.append({"embedded@localhost": {"ok": "pong"}})
        out, _ = run("--collection", "Legal", note)
        assert "A running worker ingests; waiting for it." in out
        assert "0 ready, 1 skipped" in out
        # --inline would need the index: the same message.
        error, _, _ = fails("--collection", "Legal", "--inline", note)
        assert error.startswith(f"The vector index {shard} is open in another process")
