"""Bulk import from the server's disk, through the web upload's path (documents.upload).

Who ingests: in the embedded profile, this process when it can open the Edge shard (no server
is running); when the running server holds the shard, the server's worker (this command queues
the files and waits). In the services profile, the Celery workers; with none answering a ping,
the command stops unless --inline asks it to do the work itself.
"""

import os
import stat
import time
import uuid
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError

from assistant import access
from assistant.celery import app
from ingestion import collections, documents, index, pipeline
from ingestion.models import ACTIVE, FINISHED, Collection, Document

PING_SECONDS = 3
POLL_SECONDS = 0.5
LINE_SECONDS = 10  # without a terminal, a progress line at most this often
Status = Document.Status
Failure = tuple[str, str]  # what (a path on disk or a document's label), why


def hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"  # as a ZIP's members are skipped


def walk(arguments: list[str], failures: list[Failure]) -> Iterator[tuple[Path, str]]:
    """Each file with the relative path a browser's folder upload sends ("" for a lone file)."""
    for argument in arguments:
        root = Path(argument)
        if not root.is_dir():
            if root.exists() or root.is_symlink():
                yield root, ""
            else:
                failures.append((argument, "No such file or folder."))
            continue
        top = root.resolve().name

        def unreadable(exc: OSError) -> None:
            failures.append((str(exc.filename), f"The folder cannot be read: {exc.strerror}."))

        for folder, subfolders, names in os.walk(root, onerror=unreadable):
            subfolders[:] = sorted(d for d in subfolders if not hidden(d))
            for name in sorted(n for n in names if not hidden(n)):
                path = Path(folder, name)
                yield path, f"{top}/{path.relative_to(root).as_posix()}"


def refusal(path: Path) -> str:
    """Why the file is not sent, or "": what the web upload's size limit would drop."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"The file cannot be read: {exc.strerror}."
    if not stat.S_ISREG(info.st_mode):
        return "Not a regular file."  # a pipe or device would block or never end
    if info.st_size > settings.MAX_UPLOAD_BYTES:
        return f"The file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
    return ""


def worker_answers() -> bool:
    try:
        return bool(app.control.ping(timeout=PING_SECONDS, limit=1))
    except (OperationalError, OSError):
        return False  # the broker is down: no worker can answer either


def ingests_here(inline: bool) -> bool:
    """True: this process ingests the files. False: a running worker does; this one waits."""
    if inline or settings.EMBEDDED_WORKER:
        try:
            index.ping()  # embedded: opens the Edge shard, unless the running server holds it
            return True
        except index.IndexUnavailable as exc:
            if inline or not worker_answers():
                raise CommandError(str(exc)) from exc
            return False  # the running server's worker ingests them
    if worker_answers():
        return False
    raise CommandError(
        f"No Celery worker answered within {PING_SECONDS} s. Start one "
        "(celery -A assistant.celery worker), or pass --inline to ingest in this process."
    )


def upload(
    collection: Collection,
    files: list[tuple[Path, str]],
    user: User | None,
    failures: list[Failure],
) -> uuid.UUID | None:
    """One upload of these files; its batch id, or None when none of them could be sent."""
    with ExitStack() as stack:
        sent, opened, paths = [], [], []
        for path, relative in files:
            try:
                f = stack.enter_context(path.open("rb"))
            except OSError as exc:
                failures.append((str(path), f"The file cannot be read: {exc.strerror}."))
                continue
            sent.append(path)
            opened.append(UploadedFile(f, path.name, size=os.fstat(f.fileno()).st_size))
            paths.append(relative)
        if not opened:
            return None
        try:
            created = documents.upload(collection, opened, user, paths=paths)
        except (documents.UploadRejected, OSError) as exc:  # e.g. a file grew past the limit
            failures += [(str(path), str(exc)) for path in sent]
            return None
    return created[0].batch


def counts(batches: list[uuid.UUID]) -> tuple[int, int]:
    rows = Document.objects.filter(batch__in=batches)  # mail attachments join their message's
    return rows.filter(status__in=FINISHED).count(), rows.count()


class Command(BaseCommand):
    shown = 0.0  # when the last progress line was written
    help = (
        "Import files and folders from this server's disk into a collection, as the web upload "
        "does, and wait until every document is finished. Exits non-zero if any failed."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files and folders")
        parser.add_argument("--collection", required=True, help="the collection's name")
        parser.add_argument("--create", action="store_true", help="create the collection")
        parser.add_argument("--groups", default="", help="with --create: reader groups, G1,G2")
        parser.add_argument("--user", help="the uploader the audit trail names (default: none)")
        parser.add_argument(
            "--inline", action="store_true", help="ingest in this process, not by a worker"
        )

    def handle(self, *args: object, **options: object) -> None:
        user = self.uploader(options["user"])
        collection = self.collection(options, user)
        here = ingests_here(bool(options["inline"]))
        self.stdout.write(
            "Ingesting in this process." if here else "A running worker ingests; waiting for it."
        )
        failures: list[Failure] = []
        files = list(walk(options["paths"], failures))  # type: ignore[arg-type]
        batches = self.send(collection, files, user, failures)
        if here:
            try:
                self.ingest(batches)
            finally:
                index.close()  # flush an Edge shard and release it for the server
        else:
            self.wait(batches)
        self.show(*counts(batches), final=True)
        self.summarise(batches, failures)

    def uploader(self, username: object) -> User | None:
        if not username:
            return None
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named “{username}”.")
        return user

    def collection(self, options: dict, user: User | None) -> Collection:
        name = options["collection"]
        groups = [g.strip() for g in options["groups"].split(",") if g.strip()]
        if options["create"]:
            return self.create(name, groups, user)
        if groups:
            raise CommandError("--groups goes with --create (an existing collection's readers "
                               "are changed on its page).")  # fmt: skip
        found = Collection.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"No collection named “{name}”; pass --create to create it.")
        if user and not access.collections_managed_by(user).filter(pk=found.pk).exists():
            raise CommandError(f"{user} does not manage the collection “{name}”.")
        return found

    def create(self, name: str, groups: list[str], user: User | None) -> Collection:
        if user is None or not access.can_create_collections(user):
            raise CommandError("--create needs --user naming someone who may create "
                               "collections: the collection's first manager.")  # fmt: skip
        readers = list(Group.objects.filter(name__in=groups))
        unknown = sorted(set(groups) - {g.name for g in readers})
        if unknown:
            raise CommandError(f"No group named {', '.join(unknown)}.")
        try:
            return collections.create(name, "", readers, user)  # refuses role groups
        except collections.CollectionError as exc:
            raise CommandError(str(exc)) from exc

    def send(
        self,
        collection: Collection,
        files: list[tuple[Path, str]],
        user: User | None,
        failures: list[Failure],
    ) -> list[uuid.UUID]:
        """Upload in batches of MAX_FILES_PER_UPLOAD, each one upload as from the web form."""
        accepted = []
        for path, relative in files:
            reason = refusal(path)
            if reason:
                failures.append((str(path), reason))
            else:
                accepted.append((path, relative))
        size, batches = settings.MAX_FILES_PER_UPLOAD, []
        for start in range(0, len(accepted), size):
            batch = upload(collection, accepted[start : start + size], user, failures)
            if batch is not None:
                batches.append(batch)
            self.stdout.write(
                f"Stored {min(start + size, len(accepted))} of {len(accepted)} files."
            )
        return batches

    def ingest(self, batches: list[uuid.UUID]) -> None:
        """What the worker's task does, for each document of these uploads until none is left."""
        while pending := list(
            Document.objects.filter(batch__in=batches, status__in=ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        ):
            held = 0.0
            for pk in pending:
                try:
                    held = max(held, pipeline.ingest(pk))  # >0: another worker has it
                except (ConnectionError, TimeoutError) as exc:
                    # Left with its lease: taken again when that runs out (the task's retry).
                    self.stderr.write(f"document {pk}: {exc}; trying again")
                    held = max(held, 1.0)
                self.show(*counts(batches))
            time.sleep(min(held, 1.0))

    def wait(self, batches: list[uuid.UUID]) -> None:
        while True:
            done, total = counts(batches)
            if done == total:
                return
            self.show(done, total)
            time.sleep(POLL_SECONDS)

    def show(self, done: int, total: int, *, final: bool = False) -> None:
        """A bar redrawn in place on a terminal; otherwise a line now and then."""
        if self.stdout.isatty():
            filled = 30 * done // total if total else 30
            bar = "#" * filled + "." * (30 - filled)
            self.stdout.write(f"\r[{bar}] {done} of {total} documents finished", ending="")
            if final:
                self.stdout.write("")
            self.stdout.flush()
        elif final or time.monotonic() - self.shown >= LINE_SECONDS:
            self.stdout.write(f"{done} of {total} documents finished.")
            self.shown = time.monotonic()

    def summarise(self, batches: list[uuid.UUID], failures: list[Failure]) -> None:
        rows = Document.objects.filter(batch__in=batches)
        failed = rows.filter(status__in=[Status.FAILED, Status.ENCRYPTED]).order_by("pk")
        failures += [(document.label, document.error) for document in failed]
        for what, why in failures:
            self.stderr.write(f"FAILED {what}: {why}")
        ready, skipped = rows.filter(status=Status.READY), rows.filter(status=Status.SKIPPED)
        self.stdout.write(
            f"{ready.count()} ready, {skipped.count()} skipped (already in the collection or "
            f"deleted from it), {len(failures)} failed."
        )
        if failures:
            raise CommandError(f"{len(failures)} file(s) failed to import; see above.")
