from argparse import ArgumentParser
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingestion import backup, index


class Command(BaseCommand):
    help = (
        "Bring a new, empty installation to the state of the backup in DIR (made by `backup`): "
        "checks the backup's checksums, restores database, files and vector index, then "
        "verifies the audit chain. Embedded profile: with the server stopped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace this installation's database, files and index even if not empty",
        )

    def handle(self, *args: object, directory: Path, force: bool, **options: object) -> None:
        try:
            verified, report = backup.restore(directory, force=force)
        except (backup.BackupError, index.IndexUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Restored from {directory}. Audit chain OK: {verified} rows verified.")
        if not report.clean:
            # Documents added or removed while the backup ran: the index and database differ.
            self.stdout.write(
                f"The index differs from the database for "
                f"{len(report.orphans + report.stale + report.requeued)} documents: run "
                "`manage.py reconcile_index` (or `rebuild_index`)."
            )
