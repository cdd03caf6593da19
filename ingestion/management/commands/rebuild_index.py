from django.core.management.base import BaseCommand, CommandError

from ingestion import index
from ingestion.models import Document
from ingestion.rebuild import rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the vector index from the stored files of every ready document (re-parse, "
        "re-chunk, re-embed), keeping every document's ids and point ids. For an index that is "
        "missing or stale; embedded profile: with the server stopped."
    )

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = rebuild(self.show)
        except index.IndexUnavailable as exc:  # e.g. the running server holds the shard
            raise CommandError(str(exc)) from exc
        for document_id, why in report.failed.items():
            self.stderr.write(f"FAILED document {document_id}: {why} (its old points are kept)")
        for document_id in report.changed:
            self.stderr.write(
                f"document {document_id}: the chunk count differs from the database's; "
                "re-ingest it from its page to bring both in line"
            )
        self.stdout.write(
            f"{report.documents} documents indexed ({report.points} points); points of "
            f"{len(report.removed)} documents that are not ready or no longer exist removed."
        )
        if report.failed:
            raise CommandError(f"{len(report.failed)} documents could not be read")

    def show(self, done: int, total: int, document: Document) -> None:
        """A bar redrawn in place on a terminal; otherwise a line per document."""
        if self.stdout.isatty():
            filled = 30 * done // total
            bar = "#" * filled + "." * (30 - filled)
            self.stdout.write(f"\r[{bar}] {done} of {total} documents", ending="")
            if done == total:
                self.stdout.write("")
            self.stdout.flush()
        else:
            self.stdout.write(f"{done} of {total} documents: {document.label}")
