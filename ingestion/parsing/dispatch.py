"""parse(path, extension): sniff, refuse a mismatch, run the one parser for the real type."""

from collections.abc import Callable
from pathlib import Path

from ingestion.parsing import SUPPORTED, Page, Parsed
from ingestion.parsing.books import parse_epub, parse_odt, parse_rtf
from ingestion.parsing.errors import ParseError
from ingestion.parsing.mail import parse_eml, parse_msg
from ingestion.parsing.office import parse_docx, parse_pptx, parse_xlsx
from ingestion.parsing.pdf import parse_image, parse_pdf
from ingestion.parsing.sniff import check
from ingestion.parsing.text import parse_csv, parse_html, parse_markdown, parse_plain

PARSERS: dict[str, Callable[[Path], list[Page]]] = {
    ".pdf": parse_pdf, ".docx": parse_docx, ".pptx": parse_pptx, ".xlsx": parse_xlsx,
    ".epub": parse_epub, ".odt": parse_odt, ".rtf": parse_rtf, ".csv": parse_csv,
    ".html": parse_html, ".htm": parse_html, ".md": parse_markdown, ".markdown": parse_markdown,
    ".txt": parse_plain, ".png": parse_image, ".jpg": parse_image, ".jpeg": parse_image,
    ".tif": parse_image, ".tiff": parse_image,
}  # fmt: skip
MAIL = {".eml": parse_eml, ".msg": parse_msg}


def parse(path: Path, extension: str, outdir: Path | None = None) -> Parsed:
    if extension not in SUPPORTED:
        raise ParseError(f"Files of type {extension or '(none)'} are not supported.")
    if path.stat().st_size == 0:
        raise ParseError("The file is empty.")
    check(path, extension)
    if extension in MAIL:
        pages, attachments = MAIL[extension](path, outdir)
    else:
        pages, attachments = PARSERS[extension](path), []
    pages = [Page(p.number, p.text.replace("\x00", ""), p.heading[:200]) for p in pages]
    if not any(p.text.strip() for p in pages) and not attachments:
        raise ParseError("No text could be extracted from the file.")
    return Parsed([p for p in pages if p.text.strip()], attachments)
