"""One page of a document as text, with a cited passage located in it (for citation links)."""

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import Http404

from ingestion import index
from ingestion.models import Document
from ingestion.parsing import ParseError, parse_file


@dataclass(frozen=True)
class PageText:
    number: int
    count: int
    before: str
    passage: str  # empty when no passage was asked for or it could not be found on the page
    after: str


def locate(text: str, passage: str) -> tuple[int, int] | None:
    """Where the passage sits in the page, whatever whitespace the chunker normalised."""
    words = passage.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return match.span() if match else None


def page_text(document: Document, number: int, chunk_no: int | None) -> PageText:
    """Re-extract the page (the stored file is the truth) and mark the chunk's passage on it."""
    try:
        pages = parse_file(
            Path(document.file.path),
            document.extension,
            timeout=settings.PARSE_TIMEOUT_SECONDS,
            memory_mb=settings.PARSE_MEMORY_MB,
        ).pages
    except ParseError:
        raise Http404("This document has no readable text.") from None
    page = next((p for p in pages if p.number == number), None)
    if page is None:
        raise Http404("No such page.")
    passage = index.passage(document.pk, chunk_no) if chunk_no is not None else None
    span = locate(page.text, passage) if passage else None
    if span is None:
        return PageText(number, len(pages), page.text, "", "")
    start, end = span
    return PageText(number, len(pages), page.text[:start], page.text[start:end], page.text[end:])
