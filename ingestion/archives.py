"""A ZIP upload becomes one document per member, its folder kept as `path`. The archive's
central directory is checked for bombs and hostile names before anything is decompressed."""

import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from ingestion.parsing.archive import check_bomb, unsafe_name
from ingestion.parsing.errors import ParseError

SKIPPED_PREFIXES = ("__MACOSX/", ".")


@dataclass
class Member:
    name: str  # the member's path inside the archive
    content: IO[bytes] | None  # None when it was not extracted, for `reason`
    reason: str = ""

    @property
    def folder(self) -> str:
        return self.name.rpartition("/")[0]

    @property
    def filename(self) -> str:
        return self.name.rpartition("/")[2]


def members(upload: UploadedFile | IO[bytes]) -> Iterator[Member]:
    """Each file of the archive, spooled to a temporary file valid until the next one."""
    try:
        archive = zipfile.ZipFile(upload)
        check_bomb(
            archive,
            max_members=settings.MAX_FILES_PER_ARCHIVE,
            max_unpacked=settings.MAX_UNPACKED_BYTES,
        )
    except zipfile.BadZipFile:
        yield Member("", None, "The ZIP archive is damaged.")
        return
    except ParseError as exc:
        yield Member("", None, str(exc))
        return
    for member in archive.infolist():
        if member.is_dir() or member.filename.split("/")[-1].startswith(SKIPPED_PREFIXES):
            continue
        if member.filename.startswith(SKIPPED_PREFIXES[0]):
            continue
        if member.flag_bits & 0x1:
            yield Member(member.filename, None, "The archive member is encrypted.")
            continue
        if unsafe_name(member.filename):
            reason = "The archive member has an unsafe path and was not extracted."
            yield Member(member.filename, None, reason)
            continue
        with tempfile.TemporaryFile() as spool, archive.open(member) as source:
            # The directory may lie about sizes: never unpack more than it promised.
            limit, copied = min(member.file_size, settings.MAX_UPLOAD_BYTES), 0
            while block := source.read(1024 * 1024):
                copied += len(block)
                if copied > limit:
                    break
                spool.write(block)
            if copied > limit:
                yield Member(member.filename, None, "The archive member is larger than allowed.")
            else:
                yield Member(member.filename, spool)
