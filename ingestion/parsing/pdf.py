"""PDF pages with their physical numbers, and images; what has no usable text goes through OCR.

Text comes from PDFium (pypdfium2) in content order, with no limits of its own: the parse
child's time and memory limits bound it. A table written column by column comes out of PDFium
one cell per line; a cell level with an earlier row of cells is put back on that row, so a chunk
carries a row with its label ("Total revenue 1,234 1,100").
"""

import bisect
import io
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsing.errors import Encrypted, ParseError

if TYPE_CHECKING:
    from ingestion.parsing import Page

USABLE_CHARACTERS = 20  # fewer letters than this on a page: it is a scan
MAX_PIXELS = 60_000_000
OCR_DPI = 300
CELL_WIDTH = 0.3  # a line narrower than this share of the page may be a table cell; wider is prose
MAX_CELLS = 50  # in one row, so a hostile page costs linear work


def usable(text: str) -> bool:
    return sum(ch.isalnum() for ch in text) >= USABLE_CHARACTERS


def ocr(image: Any) -> str:
    """Tesseract from the system's packages, one image at a time, as PNG through a pipe."""
    if image.width * image.height > MAX_PIXELS:
        raise ParseError("An image in the file is too large to read.")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    try:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout"], input=buffer.getvalue(), capture_output=True
        )
    except FileNotFoundError:
        raise ParseError("OCR is needed but Tesseract is not installed.") from None
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else ""


def has_images(page: Any) -> bool:
    """Whether the page draws an image, itself or in a form: a scan, or text as a picture."""
    import pypdfium2.raw as pdfium_c

    return any(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


def render(page: Any) -> Any:
    """The page as an image for OCR, at OCR_DPI or smaller where that passes MAX_PIXELS."""
    width, height = page.get_size()
    scale = min(OCR_DPI / 72, 0.99 * math.sqrt(MAX_PIXELS / max(width * height, 1)))
    return page.render(scale=scale, grayscale=True).to_pil()


@dataclass
class Piece:
    """One of PDFium's lines, with the font box from its first to its last character."""

    text: str
    left: float = 0
    bottom: float = 0
    right: float = 0
    top: float = 0

    def placed(self) -> bool:
        return self.top > self.bottom

    def level_with(self, other: "Piece") -> bool:
        overlap = min(self.top, other.top) - max(self.bottom, other.bottom)
        return overlap > 0.5 * min(self.top - self.bottom, other.top - other.bottom)

    def after(self, other: "Piece") -> bool:
        """Further along the line (TeX tucks a comma under the superscript before it)."""
        return other.right < self.left + (self.top - self.bottom) / 2

    def clear_of(self, row: list["Piece"]) -> bool:
        return all(self.right < p.left + 1 or p.right < self.left + 1 for p in row)


def piece(textpage: Any, line: str, offset: int) -> Piece:
    """The line at this offset of the page's text; unplaced where PDFium has no box for it or
    it is not upright."""
    import pypdfium2.raw as pdfium_c

    boxes = []
    for at in (offset + len(line) - len(line.lstrip()), offset + len(line.rstrip()) - 1):
        index = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, at)
        if index < 0 or abs(math.sin(pdfium_c.FPDFText_GetCharAngle(textpage, index))) > 0.01:
            return Piece(line.strip())
        # The glyph's ink across, the font's height up: the same for all text of one size.
        (left, _, right, _), (_, bottom, _, top) = (
            textpage.get_charbox(index),
            textpage.get_charbox(index, loose=True),
        )
        boxes.append((left, bottom, right, top))
    (left, bottom, _, top), (_, bottom2, right, top2) = boxes
    if right <= left:
        return Piece(line.strip())
    return Piece(line.strip(), left, min(bottom, bottom2), right, max(top, top2))


def page_text(textpage: Any, page_width: float) -> str:
    """PDFium's lines in content order. A line joins the row before when it continues it
    (PDFium breaks a line at a superscript), or an earlier row of narrow cells it is level with
    (a table written column by column); prose lines are wider than cells and stay apart."""

    def narrow(p: Piece) -> bool:
        return p.placed() and p.right - p.left < CELL_WIDTH * page_width

    rows: list[list[Piece]] = []
    cells: dict[int, list[int]] = {}  # rows that began with a narrow piece, by rounded middle
    offset = 0
    for line in textpage.get_text_range().split("\r\n"):  # PDFium's own line breaks
        new = piece(textpage, line, offset) if line.strip() else None
        offset += len(line) + 2
        if new is None:
            continue
        last = rows[-1][-1] if rows else None
        if new.placed() and last and last.level_with(new) and new.after(last):
            rows[-1].append(new)
            continue
        middle = round((new.bottom + new.top) / 2)
        beside = [
            row
            for near in range(middle - 3, middle + 4)
            for row in cells.get(near, [])[-8:]  # the latest: bounds a hostile page's work
            if len(rows[row]) < MAX_CELLS
            and all(map(narrow, rows[row]))
            and rows[row][0].level_with(new)
            and new.clear_of(rows[row])
        ]
        if narrow(new) and beside:
            bisect.insort(rows[max(beside)], new, key=lambda p: p.left)
        else:
            if narrow(new):
                cells.setdefault(middle, []).append(len(rows))
            rows.append([new])
    return "\n".join(" ".join(p.text for p in row) for row in rows)


def parse_pdf(path: Path) -> list["Page"]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from ingestion.parsing import Page

    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if exc.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise Encrypted("The PDF is encrypted (password-protected).") from None
        raise ParseError("The PDF could not be read: it is damaged or not a PDF.") from None
    pages = []
    try:
        for number in range(1, len(document) + 1):
            page = document[number - 1]
            textpage = page.get_textpage()
            text = page_text(textpage, page.get_width())
            textpage.close()
            if not usable(text) and has_images(page):
                scanned = ocr(render(page))
                text = scanned if usable(scanned) else text
            page.close()
            pages.append(Page(number, text))
    except pdfium.PdfiumError:
        raise ParseError("The PDF is damaged and could not be read.") from None
    finally:
        document.close()
    return pages


def parse_image(path: Path) -> list["Page"]:
    from PIL import Image, UnidentifiedImageError

    from ingestion.parsing import Page

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # larger raises DecompressionBombError
    try:
        with Image.open(path) as image:
            return [Page(1, ocr(image.convert("RGB")))]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        raise ParseError("The image could not be read.") from None
