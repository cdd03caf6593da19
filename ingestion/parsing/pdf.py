"""PDF pages with their numbers; a page without usable text, and any image, goes through OCR."""

import io
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsing.errors import Encrypted, ParseError

if TYPE_CHECKING:
    from ingestion.parsing import Page

USABLE_CHARACTERS = 20  # fewer letters than this on a page: it is a scan
MAX_PIXELS = 60_000_000


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


def page_images(page: Any) -> list[Any]:
    try:
        return [image.image for image in page.images if image.image is not None]
    except Exception:  # an undecodable image leaves the page without OCR, not the document
        return []


def parse_pdf(path: Path) -> list["Page"]:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

    from ingestion.parsing import Page

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Encrypted("The PDF is encrypted (password-protected).")
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if not usable(text):
                scanned = "\n".join(ocr(image) for image in page_images(page))
                text = scanned if usable(scanned) else text
            pages.append(Page(number, text))
        return pages
    except PdfReadError as exc:
        raise ParseError(f"The PDF could not be read: {exc}") from None
    except LimitReachedError:
        raise ParseError("The PDF inflates to more data than allowed and was not read.") from None
    except PyPdfError:
        raise ParseError("The PDF is damaged and could not be read.") from None
    except (RecursionError, ValueError, KeyError, TypeError, AttributeError):
        raise ParseError("The PDF is damaged and could not be read.") from None


def parse_image(path: Path) -> list["Page"]:
    from PIL import Image, UnidentifiedImageError

    from ingestion.parsing import Page

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # larger raises DecompressionBombError
    try:
        with Image.open(path) as image:
            return [Page(1, ocr(image.convert("RGB")))]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        raise ParseError("The image could not be read.") from None
