"""ingest(document): claim → parse → chunk → embed → replace points → ready."""

import logging
import os
import re
import socket
import tempfile
import threading
import time
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from assistant import metrics
from ingestion import documents, index
from ingestion.models import ACTIVE, Document
from ingestion.pages import store as store_pages
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


class LeaseLost(Exception):
    """The document was deleted, re-queued, or taken by a worker after this one's lease ran out."""


class Lease:
    """One worker's hold on one document, renewed as the work goes on. The time limit is checked
    at each renewal too: Celery enforces its own only in a prefork worker, and the embedded
    threads pool cannot interrupt a thread."""

    def __init__(self, document_id: int) -> None:
        self.document_id = document_id
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{threading.get_ident()}"[:200]
        self.deadline = time.monotonic() + settings.INGEST_TIME_LIMIT_SECONDS
        self.renewed = time.monotonic()

    def held(self) -> QuerySet[Document]:
        return Document.objects.filter(
            pk=self.document_id, lease_owner=self.owner, status__in=ACTIVE
        )

    def until(self, extra: float = 0) -> datetime:
        return timezone.now() + timedelta(seconds=settings.INGEST_LEASE_SECONDS + extra)

    def renew(self, extra: float = 0) -> None:
        """Extend the lease (by `extra` seconds more for a step that cannot renew on its way)."""
        if time.monotonic() > self.deadline:
            raise TooLong()
        if not extra and time.monotonic() - self.renewed < settings.INGEST_LEASE_SECONDS / 4:
            return
        if not self.held().update(lease_until=self.until(extra)):
            raise LeaseLost()
        self.renewed = time.monotonic()


def chunk(pages: list[Page], lease: Lease | None = None) -> list[index.Chunk]:
    chunks: list[index.Chunk] = []
    carried = ""  # a section goes on across a page break
    for page in pages:
        if lease is not None:
            lease.renew()
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


def claim(lease: Lease) -> float:
    """Take the document: 0 when taken or finished (nothing to do), else the seconds until the
    live lease another worker holds on it runs out."""
    now = timezone.now()
    free = Q(status=Status.QUEUED) | Q(lease_until=None) | Q(lease_until__lt=now)
    document = Document.objects.filter(pk=lease.document_id, status__in=ACTIVE)
    claimed = document.filter(free, attempts__lt=settings.INGEST_MAX_ATTEMPTS).update(
        status=Status.PARSING,
        attempts=F("attempts") + 1,
        error="",
        lease_owner=lease.owner,
        lease_until=lease.until(),
    )
    if claimed:
        return 0
    # A document redelivered too often (it keeps killing its worker) ends failed.
    document.filter(free).update(
        status=Status.FAILED, error=f"Gave up after {settings.INGEST_MAX_ATTEMPTS} attempts."
    )
    held = document.values_list("lease_until", flat=True).first()
    return max((held - now).total_seconds(), 1.0) if held else 0


def fail(lease: Lease, reason: str, status: str = Status.FAILED) -> None:
    lease.held().update(status=status, error=reason, lease_until=None)


def parse(document: Document, lease: Lease) -> Parsed | None:
    """Parse in the limited child; attachments become documents of their own."""
    if not document.file or not document.file.storage.exists(document.file.name):
        fail(lease, "The stored file is missing; upload the document again.")
        return None
    lease.renew(extra=settings.PARSE_TIMEOUT_SECONDS)  # the child cannot renew it
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
            fail(lease, str(exc), Status.ENCRYPTED)
            return None
        except ParseError as exc:
            log.info("document %s failed to parse: %s", document.pk, exc)
            fail(lease, str(exc))
            return None
        lease.renew()
        if parsed.attachments:
            documents.add_attachments(document, parsed.attachments)
    return parsed


def ingest(document_id: int) -> float:
    """Process the document unless another worker holds it: then the seconds to wait."""
    lease = Lease(document_id)
    wait = claim(lease)
    if wait:
        log.info("document %s: held by another worker; looking again in %.0f s", document_id, wait)
    if wait or not lease.held().exists():
        return wait
    try:
        process(lease)
    except (TooLong, SoftTimeLimitExceeded):
        log.warning("document %s: stopped at the ingestion time limit", document_id)
        fail(lease, str(TooLong()))
    except LeaseLost:
        log.warning("document %s: no longer held by this worker; stopped", document_id)
        if not Document.objects.filter(pk=document_id).exclude(status=Status.DELETING).exists():
            index.delete(document_id)  # deleted meanwhile: what was written goes too
    return 0


def process(lease: Lease) -> None:
    document = Document.objects.get(pk=lease.document_id)
    with metrics.STAGE_SECONDS.labels("parse").time():
        parsed = parse(document, lease)
    if parsed is None:
        return
    lease.held().filter(status=Status.PARSING).update(status=Status.EMBEDDING)
    try:
        with metrics.STAGE_SECONDS.labels("chunk").time():
            chunks = chunk(parsed.pages, lease)
        # Embedding and writing are timed batch by batch, inside index.put.
        written = index.replace(
            collection_id=document.collection_id,
            document_id=document.pk,
            sha256=document.sha256,
            title=document.title,
            chunks=chunks,
            before_batch=lease.renew,
        )
    except (ConnectionError, TimeoutError, TooLong, SoftTimeLimitExceeded, LeaseLost):
        raise  # transient: the task retries with backoff; or stopped at the time limit
    except Exception:
        log.exception("document %s failed while indexing", document.pk)
        fail(lease, "Indexing failed with an internal error; see the worker log.")
        return
    store_pages(document.pk, parsed.pages)  # the page view reads them there, never parses
    ready = lease.held().update(
        status=Status.READY,
        pages=len({p.number for p in parsed.pages}),
        chunks=written,
        lease_until=None,
    )
    if not ready:
        raise LeaseLost()
    documents.settle_versions(document)
    # A Qdrant server builds its indexes by itself; an Edge shard is optimised by the worker.
    if not settings.QDRANT_URL and not Document.objects.filter(status__in=ACTIVE):
        documents.enqueue_optimize()  # the queue has drained: index what this burst wrote
