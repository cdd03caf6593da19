"""Compare the database with the vector index and repair the difference."""

from dataclasses import dataclass, field

from django.db import transaction

from ingestion import index
from ingestion.models import ACTIVE, Document


@dataclass
class Report:
    orphans: list[int] = field(default_factory=list)  # points of documents that no longer exist
    stale: list[int] = field(default_factory=list)  # points of documents that are not ready
    requeued: list[int] = field(default_factory=list)  # ready documents with wrong point counts

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.stale or self.requeued)


def reconcile(*, repair: bool) -> Report:
    from ingestion.documents import enqueue

    counts = index.point_counts()
    rows = {
        pk: (status, chunks)
        for pk, status, chunks in Document.objects.values_list("pk", "status", "chunks")
    }
    report = Report()
    for document_id in counts:
        if document_id not in rows:
            report.orphans.append(document_id)
        elif rows[document_id][0] not in ACTIVE and rows[document_id][0] != Document.Status.READY:
            report.stale.append(document_id)
    for pk, (status, chunks) in rows.items():
        if status == Document.Status.READY and counts.get(pk, 0) != chunks:
            report.requeued.append(pk)
    if repair:
        for document_id in report.orphans + report.stale:
            index.delete(document_id)
        for pk in report.requeued:
            with transaction.atomic():
                Document.objects.filter(pk=pk).update(
                    status=Document.Status.QUEUED, attempts=0, error=""
                )
                transaction.on_commit(lambda pk=pk: enqueue(pk))  # type: ignore[misc]
    return report
