from django.core.management.base import BaseCommand, CommandParser

from assistant.audit import trail


class Command(BaseCommand):
    help = (
        "Remove the content of query records past their collections' retention period (never "
        "under legal hold), and of events older than AUDIT_EVENT_RETENTION_DAYS. Hashes and "
        "metadata stay, so the chain still verifies. Also closes records left pending by a "
        "process that died mid-answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: object, dry_run: bool, **options: object) -> None:
        if not dry_run:
            closed = trail.close_abandoned()
            self.stdout.write(f"closed {closed} abandoned query record(s)")
        seqs = trail.purge(dry_run=dry_run)
        verb = "would purge" if dry_run else "purged"
        self.stdout.write(f"{verb} {len(seqs)} query record(s)")
        seqs = trail.purge_events(dry_run=dry_run)
        self.stdout.write(f"{verb} {len(seqs)} event(s)")
