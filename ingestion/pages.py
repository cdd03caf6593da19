"""Pages of a document as text, stored at ingestion, with a cited passage located in one (for
citation links). The web never parses: a page is read from the table the pipeline fills."""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.http import Http404

from ingestion import index
from ingestion.models import Document, DocumentPage
from ingestion.parsing import Page


class NotStored(Exception):
    """The document has no stored pages: not ingested yet, or ingested before pages were kept."""


@dataclass(frozen=True)
class PageText:
    number: int
    count: int  # the last page's number
    previous: int | None
    next: int | None
    before: str
    passage: str  # empty when no passage was asked for or it could not be found on the page
    after: str


def store(document_id: int, pages: Iterable[Page]) -> None:
    """Replace the document's stored pages. Sections of one page are joined: a DOCX or Markdown
    file is many sections, all numbered 1."""
    merged: dict[int, DocumentPage] = {}
    for page in pages:
        if page.number in merged:
            row = merged[page.number]
            row.text = f"{row.text.rstrip()}\n\n{page.text}"
        else:
            merged[page.number] = DocumentPage(
                document_id=document_id, number=page.number, text=page.text, heading=page.heading
            )
    with transaction.atomic():
        # Locked: a document deleted meanwhile gets no pages (the pipeline drops its points).
        if not Document.objects.select_for_update().filter(pk=document_id).exists():
            return
        DocumentPage.objects.filter(document_id=document_id).delete()
        DocumentPage.objects.bulk_create(merged.values())


def locate(text: str, passage: str) -> tuple[int, int] | None:
    """Where the passage sits in the page, whatever whitespace the chunker normalised."""
    words = passage.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return match.span() if match else None


def page_text(document: Document, number: int, chunk_no: int | None) -> PageText:
    """The stored page with the chunk's passage marked on it."""
    if not document.file:
        raise Http404("This document has no stored file.")
    numbers = list(document.page_texts.order_by("number").values_list("number", flat=True))
    if not numbers:
        raise NotStored()
    page = document.page_texts.filter(number=number).first()
    if page is None:
        raise Http404("No such page.")
    previous = max((n for n in numbers if n < number), default=None)
    following = min((n for n in numbers if n > number), default=None)
    passage = index.passage(document.pk, chunk_no) if chunk_no is not None else None
    span = locate(page.text, passage) if passage else None
    if span is None:
        return PageText(number, numbers[-1], previous, following, page.text, "", "")
    start, end = span
    before, marked, after = page.text[:start], page.text[start:end], page.text[end:]
    return PageText(number, numbers[-1], previous, following, before, marked, after)
