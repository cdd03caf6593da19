"""Limits read from a ZIP's central directory, before a single byte is decompressed."""

import re
import zipfile
from pathlib import Path, PurePosixPath

from ingestion.parsing.errors import ParseError

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_RATIO = 200  # XML compresses 10-50x; a bomb compresses 1000x
RATIO_FLOOR = 1024 * 1024  # small members may compress any amount


def check_bomb(
    archive: zipfile.ZipFile,
    *,
    max_members: int = MAX_MEMBERS,
    max_unpacked: int = MAX_UNPACKED_BYTES,
    max_ratio: int = MAX_RATIO,
) -> None:
    members = archive.infolist()
    if len(members) > max_members:
        raise ParseError(f"The archive holds {len(members)} files, more than {max_members}.")
    total = sum(m.file_size for m in members)
    if total > max_unpacked:
        raise ParseError(
            f"The archive would unpack to {total // (1024 * 1024)} MB, more than the "
            f"{max_unpacked // (1024 * 1024)} MB allowed."
        )
    for m in members:
        if m.file_size > RATIO_FLOOR and m.file_size > max_ratio * max(m.compress_size, 1):
            raise ParseError(
                "The archive is compressed suspiciously well (a ZIP bomb?) and was not opened."
            )


def unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters, backslashes and `..` never become folder paths."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        return True
    return ".." in PurePosixPath(name).parts or "\x00" in name


DTD_MARKERS = [
    b"<!DOCTYPE",
    b"<!ENTITY",
    "<!DOCTYPE".encode("utf-16-le"),
    "<!ENTITY".encode("utf-16-le"),
]


def refuse_entities(archive: zipfile.ZipFile, *, allow_doctype: bool = False) -> None:
    """OOXML and ODF never declare a DTD: one that does is an entity bomb or an XXE attempt."""
    markers = DTD_MARKERS[1::2] if allow_doctype else DTD_MARKERS
    for member in archive.infolist():
        if not member.filename.lower().endswith((".xml", ".rels", ".opf", ".xhtml", ".html")):
            continue
        with archive.open(member) as f:
            tail = b""
            while block := f.read(1024 * 1024):
                window = (tail + block).upper()
                if any(marker.upper() in window for marker in markers):
                    raise ParseError(
                        "The document declares XML entities (a DTD), which are refused for safety."
                    )
                tail = block[-32:]


def open_checked(path: Path, *, allow_doctype: bool = False) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ParseError("The file is a damaged ZIP container.") from None
    check_bomb(archive)
    refuse_entities(archive, allow_doctype=allow_doctype)
    return archive
