"""The restore drill: fill, ask, back up, wipe everything, restore into fresh folders and a
fresh database, and find the same passages, an intact audit chain and nothing else changed.
And rebuild_index: a lost index comes back with the same points and the same answers.

The database is "fresh" as pytest-django allows: the test database emptied of every row (the
schema stays, as after `migrate` in a new installation). On PostgreSQL (the services profile)
the same test goes through pg_dump and pg_restore; on SQLite through the online backup API.
"""

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from assistant import audit
from assistant.audit.models import QueryRecord
from ingestion import documents, index
from ingestion.models import Document
from tests.conftest import empty_index, login, read_events, wait_for_documents
from tests.factories import make_docx, make_pdf

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

QUESTIONS = [
    "How many days of annual leave do employees get?",
    "How long do refunds take?",
    "When does the board meet?",
    "Where do visitors park?",
]


@pytest.fixture(autouse=True)
def no_optimisation(monkeypatch) -> None:
    """The worker optimises the index once the queue drains, opening it again: it would reopen
    the shard between these tests' closing it and removing its folder."""
    monkeypatch.setattr(documents, "enqueue_optimize", lambda: None)


def files() -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile("leave.md", b"# Leave\n\nEmployees get 27 days of annual leave."),
        SimpleUploadedFile("refunds.pdf", make_pdf(["Cover page.", "Refunds take 14 days."])),
        SimpleUploadedFile("board.docx", make_docx(["The board meets on Tuesdays."])),
        SimpleUploadedFile("parking.txt", b"Visitors park on level -2 of the garage."),
    ]


def fill(people) -> list[Document]:
    """Documents uploaded through HTTP and ingested by the real worker."""
    response = login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]), {"files": files()}
    )
    assert response.status_code == 302
    uploaded = list(Document.objects.order_by("pk"))
    wait_for_documents(*uploaded)
    assert all(d.status == Document.Status.READY for d in uploaded), uploaded
    return uploaded


def ask(user, question: str) -> QueryRecord:
    read_events(login(user).post(reverse("chat:ask_new"), {"question": question}))
    return QueryRecord.objects.filter(question=question).order_by("-seq").first()


def passages(collection_ids: list[int]) -> dict[str, list[tuple]]:
    """What each question retrieves: point, document, chunk, text and score, in rank order."""
    return {
        q: [
            (h.point_id, h.document_id, h.chunk_no, h.text, round(h.score, 5))
            for h in index.search(q, collection_ids, 5)
        ]
        for q in QUESTIONS
    }


def points() -> dict[str, dict]:
    """Every ready document's points, by the ids ingestion derives from the document."""
    ids = [
        index.point_id(d.pk, d.sha256, n)
        for d in Document.objects.filter(status=Document.Status.READY)
        for n in range(d.chunks)
    ]
    found = {f.id: f.payload for f in index.engine().retrieve(ids)}
    assert len(found) == len(ids) == index.engine().count()
    return found


def rows() -> dict[str, list[tuple]]:
    """Every row of every table."""
    return {
        model._meta.label_lower: list(model._default_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
    }


def media() -> dict[str, str]:
    root = Path(settings.MEDIA_ROOT)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def wipe_into_fresh_folders(settings, fresh: Path) -> None:
    """Everything goes: every row, the media folder, the index; then new, empty folders."""
    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    empty_index()
    settings.MEDIA_ROOT = fresh / "media"
    settings.INDEX_PATH = fresh / "index"
    assert not Document.objects.exists()


def test_the_restore_drill(people, celery_worker, fake_llm, settings, tmp_path) -> None:
    """Reliability #29: the restore drill: back up, wipe every row, file and the index, restore; the
    same rows, files, point counts and answers to the golden questions come back."""
    fill(people)
    scope = [people.legal.pk, people.sales.pk]
    asked = {q: ask(people.teammate, q) for q in QUESTIONS}
    assert all(r.outcome == QueryRecord.Outcome.ANSWERED for r in asked.values())
    before = (rows(), media(), points(), passages(scope))
    chain_before = audit.verify()
    assert chain_before[1] is None

    out = run("backup", str(tmp_path / "backup"))
    assert "Backup written" in out and "4 documents" in out
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["profile"] == {"database": connection.vendor, "index": "edge"}
    assert manifest["counts"]["ingestion.document"] == 4
    assert manifest["counts"]["assistant.queryrecord"] == len(QUESTIONS)
    assert manifest["points"] == sum(d.chunks for d in Document.objects.all())
    assert manifest["audit_head"]["seq"] == chain_before[0] > 0
    assert len(manifest["files"]) > 4 and all(len(h) == 64 for h in manifest["files"].values())

    wipe_into_fresh_folders(settings, tmp_path / "fresh")
    out = run("restore", str(tmp_path / "backup"))
    assert f"Audit chain OK: {chain_before[0]} rows verified" in out
    assert "differs" not in out

    # Nothing changed: every row, every file, every point, every passage.
    after = (rows(), media(), points(), passages(scope))
    for was, now in zip(before, after, strict=True):
        assert now == was
    assert audit.verify(manifest["audit_head"]) == (chain_before[0], None)
    assert "audit chain OK" in run(
        "verify_audit", "--checkpoint", str(tmp_path / "backup" / "audit_checkpoint.json")
    )
    # The restored installation answers, from the same passages as before the backup.
    for question, record in asked.items():
        again = ask(people.teammate, question)
        assert again.pk != record.pk
        assert [p["point_id"] for p in again.retrieved] == [p["point_id"] for p in record.retrieved]
    assert audit.verify()[1] is None


def test_restore_refuses_a_target_in_use_and_a_damaged_backup(people, settings, tmp_path) -> None:
    run("backup", str(tmp_path / "backup"))
    with pytest.raises(CommandError, match="not empty"):
        run("backup", str(tmp_path / "backup"))
    with pytest.raises(
        CommandError, match="this installation is not empty .*the database has users"
    ):
        run("restore", str(tmp_path / "backup"))

    wipe_into_fresh_folders(settings, tmp_path / "fresh")
    (tmp_path / "backup" / "database.sqlite3").unlink(missing_ok=True)
    (tmp_path / "backup" / "database.pgdump").unlink(missing_ok=True)
    with pytest.raises(CommandError, match="missing, changed or extra: database"):
        run("restore", str(tmp_path / "backup"))
    (tmp_path / "backup" / "manifest.json").unlink()
    with pytest.raises(CommandError, match="has no manifest.json"):
        run("restore", str(tmp_path / "backup"))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rebuild_index_brings_back_the_same_points_and_passages(people, celery_worker) -> None:
    uploaded = fill(people)
    scope = [people.legal.pk]
    before = (rows(), points(), passages(scope))

    empty_index()  # the index is lost
    assert index.engine().count() == 0
    out = run("rebuild_index")
    assert "4 of 4 documents: parking.txt" in out
    assert f"4 documents indexed ({sum(d.chunks for d in uploaded)} points)" in out
    assert (rows(), points(), passages(scope)) == before

    # Stale: a point of a document that no longer exists goes; on a terminal, a bar.
    index.replace(
        collection_id=people.legal.pk, document_id=999_999, sha256="0" * 64, title="gone",
        chunks=[index.Chunk(chunk_no=0, page=1, text="Visitors park on the roof.")],
    )  # fmt: skip
    terminal = Terminal()
    call_command("rebuild_index", stdout=terminal)
    assert "\r[" + "#" * 30 + "] 4 of 4 documents" in terminal.getvalue()
    assert (
        "points of 1 documents that are not ready or no longer exist removed" in terminal.getvalue()
    )
    assert (rows(), points(), passages(scope)) == before
