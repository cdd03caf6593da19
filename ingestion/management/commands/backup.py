from argparse import ArgumentParser
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingestion import backup, index


class Command(BaseCommand):
    help = (
        "Write a consistent backup into DIR (new or empty): the database, uploaded files, the "
        "vector index, the audit chain's head, and a manifest with checksums. Embedded profile: "
        "stop the server first (the index opens in one process)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("directory", type=Path)

    def handle(self, *args: object, directory: Path, **options: object) -> None:
        try:
            manifest = backup.backup(directory)
        except (backup.BackupError, index.IndexUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        counts = manifest["counts"]
        self.stdout.write(
            f"Backup written to {directory}: {counts['ingestion.document']} documents, "
            f"{manifest['points']} vector points, {len(manifest['files'])} files, "
            f"audit chain at seq {manifest['audit_head']['seq']}."
        )
