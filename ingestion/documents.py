"""Upload, delete and re-ingest: the only places documents change. Work is enqueued after commit.

Every file of an upload becomes a Document row with a visible status, even the refused ones
(empty, unsupported, duplicate, previously deleted): nothing an admin sends vanishes silently.
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

from assistant import audit
from ingestion import index
from ingestion.models import ACTIVE, Collection, Document, Tombstone
from ingestion.parsing import ARCHIVES, SUPPORTED, Attachment
from ingestion.tasks import ingest_document

log = logging.getLogger(__name__)
Status = Document.Status


class UploadRejected(ValueError):
    pass


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
        ingest_document.delay(document_id)
    except Exception:
        # The broker is down: the row stays queued and start-up requeues it. Nothing is lost.
        log.warning("could not enqueue document %s; it stays queued", document_id)


def refusal(collection: Collection, name: str, path: str, size: int, sha256: str) -> str:
    """Why this file must not be ingested, or "" when it may."""
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
    if twin is not None:
        return f"Skipped as a duplicate of {twin.label}."
    return ""


def add(
    collection: Collection,
    content: IO[bytes],
    *,
    name: str,
    path: str = "",
    user: User | None,
    batch: uuid.UUID | None = None,
) -> Document:
    """One file becomes one Document (inside the caller's transaction), queued or refused."""
    name, path = clean_name(name), clean_path(path)
    size = content.seek(0, 2)
    sha256 = sha256_of(content)
    reason = refusal(collection, name, path, size, sha256)
    previous = (
        collection.documents.filter(original_name=name, path=path)
        .exclude(status=Status.SKIPPED)
        .exclude(sha256=sha256)
        .order_by("-id")
        .first()
    )
    document = Document(
        collection=collection,
        title=Path(name).stem[:300] or name,
        original_name=name,
        path=path,
        extension=Path(name).suffix.lower(),
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
        document.file.save(name, File(content), save=False)
    document.save()
    audit.record(
        audit.Action.UPLOAD,
        user,
        document,
        label=document.label,
        detail={
            "sha256": sha256,
            "status": document.status,
            **({"replaces": previous.pk} if previous is not None and document.replaces else {}),
        },
    )
    if document.status == Status.QUEUED:
        transaction.on_commit(partial(enqueue, document.pk))
    return document


def upload(
    collection: Collection,
    files: Sequence[UploadedFile],
    user: User | None,
    paths: Sequence[str] = (),
) -> list[Document]:
    from ingestion import archives

    if not files:
        raise UploadRejected("Choose at least one file.")
    if len(files) > settings.MAX_FILES_PER_UPLOAD:
        raise UploadRejected(f"At most {settings.MAX_FILES_PER_UPLOAD} files per upload.")
    for f in files:
        if f.size is not None and f.size > settings.MAX_UPLOAD_BYTES:
            raise UploadRejected(
                f"{clean_name(f.name or '')} is larger than "
                f"{settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
    batch = uuid.uuid4()
    created: list[Document] = []
    with transaction.atomic():
        for n, f in enumerate(files):
            # A folder upload sends each file's relative path alongside it.
            folder = str(Path(paths[n]).parent) if n < len(paths) and paths[n] else ""
            name = clean_name(f.name or "")
            if Path(name).suffix.lower() in ARCHIVES:
                created += archives.expand(collection, f, name, user=user, batch=batch)
            else:
                created.append(add(collection, f, name=name, path=folder, user=user, batch=batch))
    return created


def add_attachments(parent: Document, attachments: list[Attachment]) -> None:
    """Mail attachments become documents; a redelivered parse adds none twice."""
    path = clean_path(f"{parent.path}/{parent.original_name}")
    with transaction.atomic():
        for attachment in attachments:
            with open(attachment.path, "rb") as f:
                if parent.collection.documents.filter(path=path, sha256=sha256_of(f)).exists():
                    continue
                add(
                    parent.collection,
                    f,
                    name=attachment.name,
                    path=path,
                    user=parent.uploaded_by,
                    batch=parent.batch,
                )


def reingest(document: Document, actor: User) -> None:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).exclude(status=Status.SKIPPED).update(
            status=Status.QUEUED, error="", attempts=0
        )
        audit.record(audit.Action.REINGEST, actor, document)
        transaction.on_commit(lambda: enqueue(document.pk))


def remove(document: Document, actor: User | None, detail: dict) -> None:
    """Points first (verified by a count of zero), then the row and its tombstone, then the file."""
    index.delete(document.pk)
    with transaction.atomic():
        audit.record(audit.Action.DELETE, actor, document, label=document.label, detail=detail)
        document.delete()
    document.file.delete(save=False)


def delete(document: Document, actor: User) -> None:
    if document.status != Status.SKIPPED:
        Tombstone.objects.create(
            collection=document.collection,
            sha256=document.sha256,
            name=document.label[:300],
            deleted_by=actor,
        )
    remove(document, actor, {"sha256": document.sha256, "tombstone": True})


def retire(old_id: int, new: Document) -> None:
    """The new version's points are written: only now do the old version's go."""
    old = Document.objects.filter(pk=old_id).first()
    if old is not None:
        remove(old, new.uploaded_by, {"sha256": old.sha256, "superseded_by": new.pk})


def delete_collection_documents(collection: Collection, actor: User) -> int:
    documents = list(collection.documents.all())
    for document in documents:
        delete(document, actor)
    return len(documents)


def reingest_collection(collection: Collection, actor: User) -> None:
    for document in collection.documents.exclude(status=Status.SKIPPED):
        reingest(document, actor)


def requeue_stuck() -> int:
    stuck = list(Document.objects.filter(status__in=ACTIVE).values_list("pk", flat=True))
    for pk in stuck:
        enqueue(pk)
    return len(stuck)
