"""Pages of a document as text, stored at ingestion, with a cited passage located in one (for
citation links). The web never parses: a page is read from the table the pipeline fills."""

import re
from collections.abc import Iterable
from dataclasses import dataclass

import markdown
import nh3
from django.db import transaction
from django.http import Http404
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from assistant.rendering import ALLOWED_TAGS
from ingestion import index
from ingestion.models import Document, DocumentPage
from ingestion.parsing import Page

MARKDOWN = {".md", ".markdown"}
RENDER_LIMIT = 1_000_000  # characters; a bigger Markdown page is shown as text (seconds to render)
# Private-use characters bracket the passage through Markdown and the sanitiser.
START, END = "\ue002", "\ue003"
# Markdown syntax a line may open with: a marker before it would unmake a heading or table row.
LEAD = re.compile(r"(?:[\s>#*+|:-]|\d+[.)]\s|(?:```|~~~).*)*")
# A link's or image's address, with (one level of) parentheses inside: the sanitiser drops it.
ADDRESS = re.compile(r"\]\((?:[^()]|\([^()]*\))*\)")
TAG = re.compile(r"(<[^>]*>)")
PAGE_TAGS = ALLOWED_TAGS | {"h1", "h2"}  # the answers' sanitiser, with every heading level


class NotStored(Exception):
    """The document has no stored pages: not ingested yet, or ingested before pages were kept."""


@dataclass(frozen=True)
class PageText:
    number: int
    count: int  # the last page's number
    previous: int | None
    next: int | None
    html: SafeString  # the page, the passage (if found) in <mark id="passage">
    rendered: bool  # Markdown rendered to HTML, else text to show preformatted


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


def without_markers(text: str) -> str:
    return text.replace(START, "").replace(END, "")


def render_markdown(text: str) -> str:
    """Headings and tables rendered; the document's own HTML shown as text, never parsed; then
    sanitised like an answer (no links, no images)."""
    converter = markdown.Markdown(extensions=["tables", "fenced_code"])
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    return nh3.clean(converter.convert(text), tags=PAGE_TAGS, attributes={})


def outside_address(text: str, at: int) -> int:
    """The position, moved past the link address it falls in (a chunk may start or end there)."""
    for match in ADDRESS.finditer(text):
        if match.start() >= at:
            break
        if at < match.end():
            return match.end()
    return at


def mark_text(text: str, span: tuple[int, int] | None) -> SafeString:
    if span is None:
        return escape(text)
    start, end = span
    before, passage, after = text[:start], text[start:end], text[end:]
    return format_html('{}<mark id="passage">{}</mark>{}', before, passage, after)


def mark_markdown(text: str, span: tuple[int, int] | None) -> SafeString | None:
    """Render a Markdown page with the passage marked; None when the markers did not survive."""
    if span is None:
        return mark_safe(render_markdown(text))  # noqa: S308 (sanitised)
    start = outside_address(text, span[0])
    if start == 0 or text[start - 1] == "\n":
        start = LEAD.match(text, start).end()  # type: ignore[union-attr]
    end = len(text[: outside_address(text, span[1])].rstrip(" \t\r\n|"))
    if start >= end:
        return None
    html = render_markdown(f"{text[:start]}{START}{text[start:end]}{END}{text[end:]}")
    if html.count(START) != 1 or html.count(END) != 1 or html.index(START) > html.index(END):
        return None  # a marker fell inside something the sanitiser drops (an image)
    before, rest = html.split(START)
    passage, after = rest.split(END)
    # One <mark> per run of text: a single one cannot span paragraphs or table cells.
    runs = TAG.split(passage)  # text, tag, text, ...: nh3 escapes every "<" in text
    marked = "".join(
        f"<mark>{run}</mark>" if i % 2 == 0 and run.strip() else run for i, run in enumerate(runs)
    )
    if "<mark>" not in marked:
        return None
    marked = marked.replace("<mark>", '<mark id="passage">', 1)
    return mark_safe(f"{before}{marked}{after}")  # noqa: S308 (sanitised, marks added)


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
    text = without_markers(page.text)
    passage = index.passage(document.pk, chunk_no) if chunk_no is not None else None
    span = locate(text, without_markers(passage)) if passage else None
    html = None
    if document.extension in MARKDOWN and len(text) <= RENDER_LIMIT:
        html = mark_markdown(text, span)
    rendered = html is not None
    if html is None:
        html = mark_text(text, span)
    return PageText(number, numbers[-1], previous, following, html, rendered)
