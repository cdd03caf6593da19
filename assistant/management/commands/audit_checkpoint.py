import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from assistant import audit


class Command(BaseCommand):
    help = (
        "Write the chain's head (seq and hash, signed with SECRET_KEY) to a file. Keep it outside "
        "the database, on write-once storage: verify_audit --checkpoint then detects a "
        "truncated tail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: object, path: Path, **options: object) -> None:
        body = audit.checkpoint(settings.SECRET_KEY)
        path.write_text(json.dumps(body, indent=2) + "\n")
        self.stdout.write(f"checkpoint at seq {body['seq']} written to {path}")
