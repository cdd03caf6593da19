"""ingest(document): claim → parse → chunk → embed → replace points → ready."""

import logging
import re
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F

from ingestion import index
from ingestion.models import ACTIVE, Document
from ingestion.parsing import Encrypted, Page, Parsed, ParseError, parse_file

if TYPE_CHECKING:
    from llama_index.core.node_parser import SentenceSplitter

log = logging.getLogger(__name__)
Status = Document.Status


@cache
def splitter() -> "SentenceSplitter":
    from llama_index.core.node_parser import SentenceSplitter

    # Chunks are sized in the embedder's own word pieces: it reads at most 256 of them.
    return SentenceSplitter(
        chunk_size=settings.CHUNK_TOKENS,
        chunk_overlap=settings.CHUNK_OVERLAP_TOKENS,
        tokenizer=index.embedder().tokenizer.tokenize,
    )


# Linear: no two parts can match the same spaces (closing #s are stripped in Python), so a
# heading followed by a million spaces costs a million steps, not a million squared.
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(\S.*)$", re.MULTILINE)


def heading_text(match: re.Match[str]) -> str:
    return match.group(1).rstrip(" \t#").strip()[:200]


def sections(text: str, heading: str) -> list[tuple[str, str]]:
    """Split a page at its Markdown headings: (heading in force, text under it) pairs."""
    result, start = [], 0
    for match in HEADING.finditer(text):
        result.append((heading, text[start : match.start()]))
        heading, start = heading_text(match), match.start()
    result.append((heading, text[start:]))
    return [(h, body) for h, body in result if body.strip()]


class TooLong(Exception):
    """The document's ingestion passed INGEST_TIME_LIMIT_SECONDS."""

    def __str__(self) -> str:
        limit = settings.INGEST_TIME_LIMIT_SECONDS
        return f"Ingestion took longer than {limit:g} seconds and was stopped."


def check(deadline: float) -> None:
    # Celery enforces its time limits only in a prefork worker; the embedded threads pool
    # cannot interrupt a thread, so the pipeline checks the clock between its steps itself.
    if time.monotonic() > deadline:
        raise TooLong()


def chunk(pages: list[Page], deadline: float = float("inf")) -> list[index.Chunk]:
    chunks: list[index.Chunk] = []
    carried = ""  # a section goes on across a page break
    for page in pages:
        check(deadline)
        for heading, body in sections(page.text, page.heading or carried):
            for text in splitter().split_text(body):
                if text.strip():
                    chunks.append(
                        index.Chunk(
                            chunk_no=len(chunks), page=page.number, text=text, heading=heading
                        )
                    )
        headings = [heading_text(match) for match in HEADING.finditer(page.text)]
        carried = headings[-1] if headings else carried
    return chunks


def claim(document_id: int) -> bool:
    """Take the document for processing; False if it is finished, gone, or out of attempts."""
    claimed = Document.objects.filter(
        pk=document_id, status__in=ACTIVE, attempts__lt=settings.INGEST_MAX_ATTEMPTS
    ).update(status=Status.PARSING, attempts=F("attempts") + 1, error="")
    if not claimed:
        # A document redelivered too often (it keeps killing its worker) ends failed.
        Document.objects.filter(pk=document_id, status__in=ACTIVE).update(
            status=Status.FAILED,
            error=f"Gave up after {settings.INGEST_MAX_ATTEMPTS} attempts.",
        )
    return bool(claimed)


def fail(document_id: int, reason: str, status: str = Status.FAILED) -> None:
    Document.objects.filter(pk=document_id).update(status=status, error=reason)


def parse(document: Document) -> Parsed | None:
    """Parse in the limited child; attachments become documents of their own."""
    with tempfile.TemporaryDirectory(prefix="enclave-parse-") as outdir:
        try:
            parsed = parse_file(
                Path(document.file.path),
                document.extension,
                timeout=settings.PARSE_TIMEOUT_SECONDS,
                memory_mb=settings.PARSE_MEMORY_MB,
                outdir=Path(outdir),
            )
        except Encrypted as exc:
            fail(document.pk, str(exc), Status.ENCRYPTED)
            return None
        except ParseError as exc:
            log.info("document %s failed to parse: %s", document.pk, exc)
            fail(document.pk, str(exc))
            return None
        if parsed.attachments:
            # Imported here: documents enqueues tasks, which call this module.
            from ingestion import documents

            documents.add_attachments(document, parsed.attachments)
    return parsed


def ingest(document_id: int) -> None:
    if not claim(document_id):
        return
    deadline = time.monotonic() + settings.INGEST_TIME_LIMIT_SECONDS
    try:
        process(document_id, deadline)
    except (TooLong, SoftTimeLimitExceeded):
        log.warning("document %s: stopped at the ingestion time limit", document_id)
        fail(document_id, str(TooLong()))


def process(document_id: int, deadline: float) -> None:
    document = Document.objects.get(pk=document_id)
    parsed = parse(document)
    if parsed is None:
        return
    check(deadline)
    Document.objects.filter(pk=document_id, status=Status.PARSING).update(status=Status.EMBEDDING)
    try:
        written = index.replace(
            collection_id=document.collection_id,
            document_id=document.pk,
            sha256=document.sha256,
            title=document.title,
            chunks=chunk(parsed.pages, deadline),
            before_batch=lambda: check(deadline),
        )
    except (ConnectionError, TimeoutError, TooLong, SoftTimeLimitExceeded):
        raise  # transient: the task retries with backoff; or stopped at the time limit
    except Exception:
        log.exception("document %s failed while indexing", document_id)
        fail(document_id, "Indexing failed with an internal error; see the worker log.")
        return
    # The document may have been deleted meanwhile: then its points must go too.
    updated = Document.objects.filter(pk=document_id, status__in=ACTIVE).update(
        status=Status.READY, pages=len({p.number for p in parsed.pages}), chunks=written
    )
    if not updated and not Document.objects.filter(pk=document_id).exists():
        index.delete(document_id)
    elif updated and document.replaces_id:
        from ingestion import documents

        documents.retire(document.replaces_id, document)
    # A Qdrant server builds its indexes by itself; an Edge shard is optimised by the worker.
    if updated and not settings.QDRANT_URL and not Document.objects.filter(status__in=ACTIVE):
        from ingestion.tasks import optimize_index  # here: tasks imports this module

        try:
            optimize_index.delay()  # the queue has drained: index what this burst wrote
        except Exception:
            log.warning("could not enqueue the index optimisation; the next burst will")
