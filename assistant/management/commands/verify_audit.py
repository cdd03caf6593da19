import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant import audit


class Command(BaseCommand):
    help = "Walk the audit hash chain and report the first broken record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="a file written by audit_checkpoint: also detects a truncated tail",
        )

    def handle(self, *args: object, checkpoint: Path | None, **options: object) -> None:
        head = None
        if checkpoint is not None:
            head = json.loads(checkpoint.read_text())
            if not audit.checkpoint_is_authentic(head, settings.SECRET_KEY):
                raise CommandError(f"{checkpoint} is not a checkpoint signed by this installation")
        count, problem = audit.verify(head)
        if problem is not None:
            raise CommandError(f"audit chain BROKEN after {count} good rows: {problem}")
        self.stdout.write(f"audit chain OK: {count} rows verified")
