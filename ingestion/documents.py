"""Upload, delete and re-ingest: the only places documents change. Work is enqueued after commit."""

import hashlib
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from assistant import audit
from ingestion import index
from ingestion.models import Collection, Document
from ingestion.parsing import SUPPORTED
from ingestion.tasks import ingest_document

log = logging.getLogger(__name__)


class UploadRejected(ValueError):
    pass


def sha256_of(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for block in upload.chunks():
        digest.update(block)
    upload.seek(0)
    return digest.hexdigest()


def clean_name(name: str) -> str:
    # Keep a readable label but never a path, control character or endless length.
    name = Path(name.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] if name.strip(".") else "unnamed"


def enqueue(document_id: int) -> None:
    try:
        ingest_document.delay(document_id)
    except Exception:
        # The broker is down: the row stays queued and start-up requeues it. Nothing is lost.
        log.exception("could not enqueue document %s; it stays queued", document_id)


def upload(
    collection: Collection, files: Sequence[UploadedFile], user: User | None
) -> list[Document]:
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
    created = []
    with transaction.atomic():
        for f in files:
            name = clean_name(f.name or "")
            extension = Path(name).suffix.lower()
            document = Document(
                collection=collection,
                title=Path(name).stem[:300] or name,
                original_name=name,
                extension=extension,
                size=f.size or 0,
                sha256=sha256_of(f),
                uploaded_by=user,
            )
            if extension not in SUPPORTED:
                document.status = Document.Status.FAILED
                document.error = f"Files of type {extension or '(none)'} are not supported."
            document.file.save(name, f, save=False)
            document.save()
            audit.record(audit.Action.UPLOAD, user, document, detail={"sha256": document.sha256})
            created.append(document)
            if document.status == Document.Status.QUEUED:
                transaction.on_commit(partial(enqueue, document.pk))
    return created


def reingest(document: Document, actor: User) -> None:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.QUEUED, error="", attempts=0
        )
        audit.record(audit.Action.REINGEST, actor, document)
        transaction.on_commit(lambda: enqueue(document.pk))


def delete(document: Document, actor: User) -> None:
    """Remove points (verified by a count of zero), the stored file, then the row."""
    index.delete(document.pk)
    with transaction.atomic():
        audit.record(audit.Action.DELETE, actor, document, detail={"sha256": document.sha256})
        document.delete()
    document.file.delete(save=False)


def requeue_stuck() -> int:
    stuck = list(
        Document.objects.filter(
            status__in=[Document.Status.QUEUED, Document.Status.PROCESSING]
        ).values_list("pk", flat=True)
    )
    for pk in stuck:
        enqueue(pk)
    return len(stuck)
