"""The real type of a file, from its bytes: a name can lie, the content cannot."""

import zipfile
from pathlib import Path

from ingestion.parsing.errors import Encrypted, ParseError

MAGIC = [
    (b"%PDF-", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),  # Outlook .msg, legacy Office, encrypted OOXML
    (b"{\\rtf", "rtf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF8", "gif"),
    (b"MZ", "executable"),
    (b"\x7fELF", "executable"),
    (b"\x1f\x8b", "gzip"),
]
ZIP_MARKERS = [
    ("word/document.xml", "docx"),
    ("ppt/presentation.xml", "pptx"),
    ("xl/workbook.xml", "xlsx"),
]
EXPECTED = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".epub": "epub",
    ".odt": "odt", ".rtf": "rtf", ".msg": "ole", ".png": "png", ".jpg": "jpeg",
    ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".zip": "zip",
}  # fmt: skip
LABELS = {"text": "text", "ole": "an OLE compound file", "zip": "a ZIP archive"}


def kind_of(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(8192)
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return zip_kind(path)
    return "text"  # anything else is read as text; the text parsers refuse binary noise


def zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100]
                if mimetype.startswith(b"application/epub+zip"):
                    return "epub"
                if mimetype.startswith(b"application/vnd.oasis.opendocument.text"):
                    return "odt"
    except zipfile.BadZipFile:
        return "broken ZIP"
    for marker, kind in ZIP_MARKERS:
        if marker in names:
            return kind
    return "zip"


def check(path: Path, extension: str) -> str:
    """The kind to parse as; a ParseError when the content is not what the name says."""
    kind = kind_of(path)
    expected = EXPECTED.get(extension, "text")
    if kind == expected:
        return kind
    if kind == "ole" and expected in ("docx", "pptx", "xlsx") and is_encrypted_ooxml(path):
        raise Encrypted("The file is encrypted (password-protected).")
    label = LABELS.get(kind, f"a {kind.upper()} file" if kind != "executable" else "a program")
    raise ParseError(
        f"The file is named {extension} but its content is {label}, "
        f"not {'text' if expected == 'text' else 'a ' + expected.upper() + ' file'}."
    )


def is_encrypted_ooxml(path: Path) -> bool:
    # Encrypted Office files are OLE containers holding an "EncryptedPackage" stream.
    return "EncryptedPackage".encode("utf-16-le") in path.read_bytes()
