from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from ingestion import index
from ingestion.reconcile import reconcile


class Command(BaseCommand):
    help = "Compare documents with the vector index (points per document, orphans) and repair."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = reconcile(repair=not options["dry_run"])
        except index.IndexUnavailable as exc:  # e.g. the running server holds the shard
            raise CommandError(str(exc)) from exc
        verb = "found" if options["dry_run"] else "repaired"
        self.stdout.write(
            f"orphaned documents {verb}: {len(report.orphans)}; "
            f"points of unfinished or failed documents {verb}: {len(report.stale)}; "
            f"ready documents with missing or extra points re-queued: {len(report.requeued)}"
        )
        if report.clean:
            self.stdout.write("The index matches the database.")
