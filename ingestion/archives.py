"""A ZIP upload becomes one document per member, its folder kept as `path`. The archive's
central directory is checked for bombs and hostile names before anything is decompressed."""

import tempfile
import uuid
import zipfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from ingestion import documents
from ingestion.models import Collection, Document
from ingestion.parsing.archive import check_bomb, unsafe_name
from ingestion.parsing.errors import ParseError

SKIPPED_PREFIXES = ("__MACOSX/", ".")


def failed(
    collection: Collection, name: str, reason: str, user: User | None, batch: uuid.UUID
) -> Document:
    document = Document.objects.create(
        collection=collection,
        title=name[:300],
        original_name=documents.clean_name(name),
        extension=Path(name).suffix.lower()[:16],
        size=0,
        sha256="",
        status=Document.Status.FAILED,
        error=reason,
        uploaded_by=user,
        batch=batch,
    )
    return document


def expand(
    collection: Collection, upload: UploadedFile, name: str, *, user: User | None, batch: uuid.UUID
) -> list[Document]:
    try:
        archive = zipfile.ZipFile(upload)
        check_bomb(
            archive,
            max_members=settings.MAX_FILES_PER_ARCHIVE,
            max_unpacked=settings.MAX_UNPACKED_BYTES,
        )
    except zipfile.BadZipFile:
        return [failed(collection, name, "The ZIP archive is damaged.", user, batch)]
    except ParseError as exc:
        return [failed(collection, name, str(exc), user, batch)]
    created = []
    for member in archive.infolist():
        if member.is_dir() or member.filename.split("/")[-1].startswith(SKIPPED_PREFIXES):
            continue
        if member.filename.startswith(SKIPPED_PREFIXES[0]):
            continue
        if unsafe_name(member.filename) or member.flag_bits & 0x1:
            reason = (
                "The archive member is encrypted."
                if member.flag_bits & 0x1
                else "The archive member has an unsafe path and was not extracted."
            )
            created.append(failed(collection, member.filename, reason, user, batch))
            continue
        folder, _, filename = member.filename.rpartition("/")
        with tempfile.TemporaryFile() as spool, archive.open(member) as source:
            # The directory may lie about sizes: never unpack more than it promised.
            copied = 0
            while block := source.read(1024 * 1024):
                copied += len(block)
                if copied > min(member.file_size, settings.MAX_UPLOAD_BYTES):
                    break
                spool.write(block)
            if copied > min(member.file_size, settings.MAX_UPLOAD_BYTES):
                reason = "The archive member is larger than allowed."
                created.append(failed(collection, member.filename, reason, user, batch))
                continue
            created.append(
                documents.add(
                    collection,
                    spool,
                    name=filename,
                    path=f"{name}/{folder}" if folder else name,
                    user=user,
                    batch=batch,
                )
            )
    return created
