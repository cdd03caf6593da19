"""File → text with page numbers. `parse_file` runs the parser in a child process with a
wall-clock and an address-space limit, so a hostile file costs one document, never the worker.

Run as `python -m ingestion.parsing PATH EXT` the module prints the pages as JSON.
"""

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

SUPPORTED = {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt"}


class ParseError(Exception):
    """A readable reason a document cannot be ingested; shown to the admin as is."""


@dataclass
class Page:
    number: int
    text: str


def decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Windows-1252 is a superset of Latin-1's printable range: the usual legacy encoding.
        return data.decode("cp1252", errors="replace")


def parse_pdf(path: Path) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("The PDF is encrypted (password-protected).")
        return [
            Page(number, page.extract_text() or "")
            for number, page in enumerate(reader.pages, start=1)
        ]
    except PdfReadError as exc:
        raise ParseError(f"The PDF could not be read: {exc}") from None


def parse_docx(path: Path) -> list[Page]:
    import docx

    try:
        document = docx.Document(str(path))
    except Exception:  # python-docx raises many types for a file that is not OOXML
        raise ParseError("The file is not a valid DOCX document.") from None
    blocks = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text.strip() for cell in row.cells))
    return [Page(1, "\n\n".join(blocks))]


def parse_html(path: Path) -> list[Page]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(path.read_bytes()), "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]):
        tag.decompose()
    # Block elements end a line; inline ones (links, bold) stay inside their sentence.
    for tag in soup(BLOCK_TAGS):
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return [Page(1, "\n".join(line for line in lines if line))]


BLOCK_TAGS = [
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title",
    "section", "article", "table", "blockquote", "pre", "dd", "dt",
]  # fmt: skip


def parse_text(path: Path) -> list[Page]:
    return [Page(1, decode_text(path.read_bytes()))]


PARSERS = {
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".html": parse_html,
    ".htm": parse_html,
    ".md": parse_text,
    ".markdown": parse_text,
    ".txt": parse_text,
}


def parse(path: Path, extension: str) -> list[Page]:
    parser = PARSERS.get(extension)
    if parser is None:
        raise ParseError(f"Files of type {extension or '(none)'} are not supported.")
    if path.stat().st_size == 0:
        raise ParseError("The file is empty.")
    pages = [Page(p.number, p.text.replace("\x00", "")) for p in parser(path)]
    if not any(p.text.strip() for p in pages):
        raise ParseError("No text could be extracted from the file.")
    return pages


def parse_file(path: Path, extension: str, *, timeout: int, memory_mb: int) -> list[Page]:
    """Parse in a child process; limits and crashes turn into a ParseError."""
    env = {**os.environ, "ENCLAVE_PARSE_MEMORY_MB": str(memory_mb)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ingestion.parsing", str(path), extension],
            capture_output=True,
            timeout=timeout,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except subprocess.TimeoutExpired:
        raise ParseError(f"Parsing took longer than {timeout} seconds and was stopped.") from None
    if done.returncode == 2:
        raise ParseError(done.stdout.decode("utf-8", errors="replace").strip())
    if done.returncode != 0:
        if b"MemoryError" in done.stderr:
            raise ParseError(f"Parsing needed more than {memory_mb} MB of memory and was stopped.")
        raise ParseError("The parser crashed on this file.")
    return [Page(**p) for p in json.loads(done.stdout)]


def main() -> None:
    import resource

    limit = int(os.environ.get("ENCLAVE_PARSE_MEMORY_MB", "1024")) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        pages = parse(Path(sys.argv[1]), sys.argv[2])
    except ParseError as exc:
        sys.stdout.write(str(exc))
        sys.exit(2)
    json.dump([asdict(p) for p in pages], sys.stdout)


if __name__ == "__main__":
    main()
