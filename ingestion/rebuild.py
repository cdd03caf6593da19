"""Rebuild the vector index from the stored files, for when it is missing or stale.

Each ready document's stored file is parsed and chunked again by the pipeline's own code and its
points replaced, so chunk numbers, texts and point ids (derived from document id, content hash
and chunk number) come out as ingestion made them. No document row changes.
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from ingestion import index, pipeline
from ingestion.models import Document
from ingestion.parsing import ParseError, parse_file


@dataclass
class Rebuilt:
    documents: int = 0
    points: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # document id: why
    changed: list[int] = field(default_factory=list)  # chunk count differs from the database's
    removed: list[int] = field(default_factory=list)  # points of documents not ready, or gone


def stored_chunks(document: Document) -> list[index.Chunk]:
    if not document.file or not document.file.storage.exists(document.file.name):
        raise ParseError("The stored file is missing.")
    # Attachments land in the throwaway folder: they are documents of their own already.
    with tempfile.TemporaryDirectory(prefix="enclave-rebuild-") as outdir:
        parsed = parse_file(
            Path(document.file.path),
            document.extension,
            timeout=settings.PARSE_TIMEOUT_SECONDS,
            memory_mb=settings.PARSE_MEMORY_MB,
            outdir=Path(outdir),
        )
    return pipeline.chunk(parsed.pages)


def rebuild(progress: Callable[[int, int, Document], None] = lambda *_: None) -> Rebuilt:
    """Re-index every ready document, then drop points no ready document owns. A document that
    cannot be read keeps whatever points it had, and is reported."""
    ready = list(Document.objects.filter(status=Document.Status.READY).order_by("pk"))
    report = Rebuilt()
    for done, document in enumerate(ready, 1):
        try:
            chunks = stored_chunks(document)
        except ParseError as exc:
            report.failed[document.pk] = str(exc)
        else:
            written = index.replace(
                collection_id=document.collection_id,
                document_id=document.pk,
                sha256=document.sha256,
                title=document.title,
                chunks=chunks,
            )
            report.documents += 1
            report.points += written
            if written != document.chunks:
                report.changed.append(document.pk)
        progress(done, len(ready), document)
    owned = {d.pk for d in ready}
    for document_id in sorted(set(index.point_counts()) - owned):
        index.delete(document_id)
        report.removed.append(document_id)
    return report
