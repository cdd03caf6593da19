"""Upload, delete, re-ingest and versions: the only places documents change. Work is enqueued
after commit, by task name (this module never imports the tasks or the pipeline).

Every file of an upload becomes a Document row with a visible status, even the refused ones
(empty, unsupported, duplicate, previously deleted): nothing an admin sends vanishes silently.
Files are stored before the transaction that writes the rows: the audit chain, locked by that
transaction, is never held while megabytes are hashed and written.
"""

import hashlib
import logging
import uuid
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from assistant import audit
from assistant.celery import app
from ingestion import archives, index
from ingestion.models import ACTIVE, Collection, Document, Tombstone
from ingestion.parsing import ARCHIVES, SUPPORTED, Attachment

log = logging.getLogger(__name__)
Status = Document.Status


class UploadRejected(ValueError):
    """Nothing of the upload was stored; the message is shown to the uploader."""


def sha256_of(f: IO[bytes] | UploadedFile) -> str:
    digest = hashlib.sha256()
    f.seek(0)
    while block := f.read(1024 * 1024):
        digest.update(block)
    f.seek(0)
    return digest.hexdigest()


def clean_name(name: str) -> str:
    # Keep a readable label but never a path, control character or endless length.
    name = Path(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name.strip("."):
        return "unnamed"
    suffix = Path(name).suffix[:16]
    return name if len(name) <= 200 else name[: 200 - len(suffix)] + suffix  # keep the type


def clean_path(path: str) -> str:
    """A folder path kept as a label: no `..`, no absolute root, no control characters."""
    parts = [clean_name(p) for p in path.replace("\\", "/").split("/") if p.strip(". ")]
    return "/".join(p for p in parts if p != "unnamed")[:500]


def enqueue(document_id: int) -> None:
    try:
        app.send_task("ingestion.tasks.ingest_document", args=[document_id])
    except Exception:
        # The broker is down: the row stays queued and start-up requeues it. Nothing is lost.
        log.warning("could not enqueue document %s; it stays queued", document_id)


def enqueue_removal(document_id: int) -> None:
    try:
        app.send_task("ingestion.tasks.remove_document", args=[document_id])
    except Exception:
        # Hidden already; start-up and every broker reconnection send the removal again.
        log.warning("could not enqueue the removal of document %s; it stays deleting", document_id)


def enqueue_optimize() -> None:
    try:
        app.send_task("ingestion.tasks.optimize_index")
    except Exception:
        log.warning("could not enqueue the index optimisation; the next burst will")


def refusal(collection: Collection, name: str, size: int, sha256: str, seen: dict[str, str]) -> str:
    """Why this file must not be ingested, or "" when it may. `seen`: this upload's files so far."""
    extension = Path(name).suffix.lower()
    if extension not in SUPPORTED:
        return f"Files of type {extension or '(none)'} are not supported."
    if size == 0:
        return "The file is empty."
    tombstone = Tombstone.objects.filter(collection=collection, sha256=sha256).first()
    if tombstone is not None:
        return (
            f"Skipped: this content was deleted from the collection on "
            f"{tombstone.deleted_at:%Y-%m-%d} ({tombstone.name}) and is not brought back."
        )
    twin = (
        collection.documents.filter(sha256=sha256)
        .exclude(status__in=[Status.FAILED, Status.SKIPPED])
        .first()
    )
    if twin is not None or sha256 in seen:
        return f"Skipped as a duplicate of {twin.label if twin else seen[sha256]}."
    return ""


def stage(
    collection: Collection,
    content: IO[bytes],
    *,
    name: str,
    path: str,
    user: User | None,
    batch: uuid.UUID,
    seen: dict[str, str],
) -> Document:
    """One file becomes one unsaved Document, queued or refused; a queued one's file is stored."""
    name, path = clean_name(name), clean_path(path)
    size = content.seek(0, 2)
    sha256 = sha256_of(content)
    reason = refusal(collection, name, size, sha256, seen)
    # Files of one upload are never versions of each other (two attachments may share a name).
    previous = (
        collection.documents.filter(original_name=name, path=path)
        .exclude(status=Status.SKIPPED)
        .exclude(sha256=sha256)
        .exclude(batch=batch)
        .order_by("-id")
        .first()
    )
    document = Document(
        collection=collection,
        title=Path(name).stem[:300] or name,
        original_name=name,
        path=path,
        extension=Path(name).suffix.lower()[:16],  # the column's width: PostgreSQL enforces it
        size=size,
        sha256=sha256,
        uploaded_by=user,
        batch=batch,
        replaces=previous if not reason else None,
    )
    if reason:
        document.status = Status.SKIPPED if reason.startswith("Skipped") else Status.FAILED
        document.error = reason
    else:
        seen[sha256] = document.label
        document.file.save(name, File(content), save=False)
    return document


def refused(
    collection: Collection, name: str, reason: str, user: User | None, batch: uuid.UUID
) -> Document:
    """An unsaved failed Document for a file that could not even be read (an archive member)."""
    return Document(
        collection=collection,
        title=name[:300],
        original_name=clean_name(name),
        extension=Path(name).suffix.lower()[:16],
        size=0,
        sha256="",
        status=Status.FAILED,
        error=reason,
        uploaded_by=user,
        batch=batch,
    )


def commit(document: Document) -> Document:
    """Save a staged document and its audit event (inside the caller's transaction)."""
    document.save()
    replaces = {"replaces": document.replaces_id} if document.replaces_id else {}
    audit.record(
        audit.Action.UPLOAD,
        document.uploaded_by,
        document,
        label=document.label,
        detail={"sha256": document.sha256, "status": document.status, **replaces},
    )
    if document.status == Status.QUEUED:
        transaction.on_commit(partial(enqueue, document.pk))
    return document


def commit_all(staged: list[Document]) -> list[Document]:
    """One short transaction for the rows and events; a failure leaves no file behind."""
    try:
        with transaction.atomic():
            return [commit(document) for document in staged]
    except BaseException:
        discard(staged)
        raise


def discard(staged: list[Document]) -> None:
    for document in staged:
        if document.file:
            document.file.delete(save=False)


def upload(
    collection: Collection,
    files: Sequence[UploadedFile],
    user: User | None,
    paths: Sequence[str] = (),
) -> list[Document]:
    if not files:
        raise UploadRejected(gettext("Choose at least one file."))
    if len(files) > settings.MAX_FILES_PER_UPLOAD:
        raise UploadRejected(
            gettext("At most %(count)d files per upload.")
            % {"count": settings.MAX_FILES_PER_UPLOAD}
        )
    for f in files:
        if f.size is not None and f.size > settings.MAX_UPLOAD_BYTES:
            raise UploadRejected(
                gettext("%(name)s is larger than %(size)d MB.")
                % {"name": clean_name(f.name or ""), "size": settings.MAX_UPLOAD_BYTES // 2**20}
            )
    batch, seen, staged = uuid.uuid4(), dict[str, str](), list[Document]()
    try:
        for n, f in enumerate(files):
            # A folder upload sends each file's relative path alongside it.
            folder = str(Path(paths[n]).parent) if n < len(paths) and paths[n] else ""
            name = clean_name(f.name or "")
            if Path(name).suffix.lower() not in ARCHIVES:
                staged.append(
                    stage(collection, f, name=name, path=folder, user=user, batch=batch, seen=seen)
                )
                continue
            archive = f"{folder}/{name}" if folder else name  # a ZIP is a folder of its own
            for member in archives.members(f):
                if member.content is None:
                    staged.append(
                        refused(collection, member.name or name, member.reason, user, batch)
                    )
                else:
                    inside = f"{archive}/{member.folder}" if member.folder else archive
                    staged.append(
                        stage(collection, member.content, name=member.filename, path=inside,
                              user=user, batch=batch, seen=seen)
                    )  # fmt: skip
    except BaseException:
        discard(staged)
        raise
    return commit_all(staged)


def add_attachments(parent: Document, attachments: list[Attachment]) -> None:
    """Mail attachments become documents; a redelivered parse adds none twice."""
    path = clean_path(f"{parent.path}/{parent.original_name}")
    staged: list[Document] = []
    seen: dict[str, str] = {}
    for attachment in attachments:
        with open(attachment.path, "rb") as f:
            if parent.collection.documents.filter(path=path, sha256=sha256_of(f)).exists():
                continue
            staged.append(
                stage(parent.collection, f, name=attachment.name, path=path,
                      user=parent.uploaded_by, batch=parent.batch or uuid.uuid4(), seen=seen)
            )  # fmt: skip
    commit_all(staged)


def reingest(document: Document, actor: User) -> None:
    with transaction.atomic():
        # A worker still on the old run loses its lease and stops at its next step.
        going = [Status.SKIPPED, Status.DELETING]
        Document.objects.filter(pk=document.pk).exclude(status__in=going).update(
            status=Status.QUEUED, error="", attempts=0, lease_owner="", lease_until=None
        )
        audit.record(audit.Action.REINGEST, actor, document)
        transaction.on_commit(lambda: enqueue(document.pk))


def hide(document: Document, actor: User | None, detail: dict, *, tombstone: bool) -> None:
    """In one transaction: the tombstone, the event, and the document out of search and pages
    (status deleting). Its points, row and file go in `finish_removal`, in a worker."""
    with transaction.atomic():
        if tombstone:
            Tombstone.objects.create(
                collection=document.collection,
                sha256=document.sha256,
                name=document.label[:300],
                deleted_by=actor,
            )
        audit.record(audit.Action.DELETE, actor, document, label=document.label, detail=detail)
        # A worker still ingesting it loses its lease and stops at its next step.
        Document.objects.filter(pk=document.pk).update(
            status=Status.DELETING, lease_owner="", lease_until=None
        )


def finish_removal(document_id: int) -> None:
    """The worker's part of a delete: points first (verified by a count of zero), then the row,
    then the file. Safe to run twice."""
    document = Document.objects.filter(pk=document_id, status=Status.DELETING).first()
    if document is None:
        return
    index.delete(document.pk)
    Document.objects.filter(pk=document.pk).delete()
    document.file.delete(save=False)


def delete(document: Document, actor: User) -> None:
    tombstone = document.status != Status.SKIPPED
    detail = {"sha256": document.sha256, "tombstone": tombstone}
    hide(document, actor, detail, tombstone=tombstone)
    transaction.on_commit(lambda: enqueue_removal(document.pk))


def settle_versions(document: Document) -> None:
    """`document` became ready: every older ready version of it is retired, or this one is when
    a newer version is ready already. Versions are ordered by upload (row id); the files of one
    upload are distinct documents, never versions of each other."""
    ready = Document.objects.filter(
        collection_id=document.collection_id,
        original_name=document.original_name,
        path=document.path,
        status=Status.READY,
    ).exclude(pk=document.pk)
    if document.batch is not None:
        ready = ready.exclude(batch=document.batch)
    newer = ready.filter(pk__gt=document.pk).order_by("pk").first()
    if newer is not None:
        retire(document, newer)
        return
    for old in ready.filter(pk__lt=document.pk):
        retire(old, document)


def retire(old: Document, new: Document) -> None:
    """Runs in the worker that made `new` ready: the old version's points go at once."""
    hide(old, new.uploaded_by, {"sha256": old.sha256, "superseded_by": new.pk}, tombstone=False)
    finish_removal(old.pk)


def delete_collection_documents(collection: Collection, actor: User) -> int:
    documents = list(collection.documents.exclude(status=Status.DELETING))  # once is enough
    for document in documents:
        delete(document, actor)
    return len(documents)


def reingest_collection(collection: Collection, actor: User) -> None:
    for document in collection.documents.exclude(status__in=[Status.SKIPPED, Status.DELETING]):
        reingest(document, actor)  # a document being deleted stays deleted


def requeue_stuck() -> int:
    """Queued documents (their message may be lost) and those whose worker's lease ran out,
    and deleted documents whose removal has not finished. A document another worker is
    processing is left alone."""
    expired = Q(lease_until=None) | Q(lease_until__lt=timezone.now())
    stuck = Document.objects.filter(status__in=ACTIVE).filter(Q(status=Status.QUEUED) | expired)
    pks = list(stuck.values_list("pk", flat=True))
    for pk in pks:
        enqueue(pk)
    deleting = list(Document.objects.filter(status=Status.DELETING).values_list("pk", flat=True))
    for pk in deleting:
        enqueue_removal(pk)
    return len(pks) + len(deleting)
