"""Writing a document's chunks: embed, weigh terms, upsert; replace without a gap; delete."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ingestion import lexical
from ingestion.index.embedder import embed
from ingestion.index.engine import Point, engine

log = logging.getLogger(__name__)
POINT_NAMESPACE = uuid.UUID("6f1c0f7e-3f1a-4d5e-9a47-1f0d8d7a2b10")
WRITE_BATCH = 256  # chunks embedded and written together


@dataclass(frozen=True)
class Chunk:
    chunk_no: int
    page: int
    text: str
    heading: str = ""  # the section the chunk sits in, when the document has headings

    def indexed_text(self, title: str) -> str:
        return indexed_text(title, self.heading, self.text)


def indexed_text(title: str, heading: str, text: str) -> str:
    """What both vectors (and a re-ranker) see: title and section heading give a chunk context."""
    return "\n".join(part for part in (title, heading, text) if part)


@dataclass(frozen=True)
class Source:
    """One document's chunks, ready to be indexed."""

    collection_id: int
    document_id: int
    sha256: str
    title: str
    chunks: list[Chunk]


def point_id(document_id: int, sha256: str, chunk_no: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{sha256}:{chunk_no}"))


def points(
    batch: list[tuple[Source, Chunk]], texts: list[str], vectors: list[list[float]]
) -> list[Point]:
    return [
        Point(
            id=point_id(source.document_id, source.sha256, c.chunk_no),
            dense=vector,
            sparse=lexical.document_vector(text),
            payload={
                "collection_id": str(source.collection_id),
                "document_id": source.document_id,
                "document_sha256": source.sha256,
                "chunk_no": c.chunk_no,
                "page": c.page,
                "title": source.title,
                "heading": c.heading,
                "text": c.text,
            },
        )
        for (source, c), text, vector in zip(batch, texts, vectors, strict=True)
    ]


def write(points: list[Point]) -> None:
    engine().upsert(points)


def put(sources: list[Source], before_batch: Callable[[], None] = lambda: None) -> list[str]:
    """Embed and write every chunk of the given documents; returns the ids of the points written.

    Batch by batch, so a 600-page document never holds all its vectors in memory at once. No
    lock is held while embedding: searches and other writers go on. `before_batch` may stop the
    work between batches by raising (the pipeline's time limit).
    """
    from assistant import metrics  # not at the top: bench/scale.py imports this without settings

    pairs = [(s, c) for s in sources for c in s.chunks]
    written: list[str] = []
    for start in range(0, len(pairs), WRITE_BATCH):
        before_batch()
        batch = pairs[start : start + WRITE_BATCH]
        texts = [c.indexed_text(s.title) for s, c in batch]
        with metrics.STAGE_SECONDS.labels("embed").time():
            new = points(batch, texts, embed(texts))
        with metrics.STAGE_SECONDS.labels("write").time():
            write(new)
        metrics.CHUNKS_EMBEDDED.inc(len(new))
        written += [p.id for p in new]
        ids = sorted({s.document_id for s, _ in batch})
        which = f"document {ids[0]}" if len(ids) == 1 else f"{len(ids)} documents"
        log.info("%s: %d of %d chunks written", which, len(written), len(pairs))
    return written


def replace(
    *,
    collection_id: int,
    document_id: int,
    sha256: str,
    title: str,
    chunks: list[Chunk],
    before_batch: Callable[[], None] = lambda: None,
) -> int:
    """Write the document's new points, then drop any older ones: readers never see it empty."""
    written = put([Source(collection_id, document_id, sha256, title, chunks)], before_batch)
    engine().delete(document_id, keep=written)
    return len(written)


def delete(document_id: int) -> None:
    """Remove every point of a document and prove it: a count of zero afterwards."""
    engine().delete(document_id)
    remaining = count(document_id)
    if remaining:
        raise RuntimeError(f"{remaining} points of document {document_id} survived deletion")


def count(document_id: int) -> int:
    return engine().count(document_id)


def passage(document_id: int, chunk_no: int) -> str | None:
    """The text of one chunk of a document (the caller has authorised the document)."""
    found = engine().chunk(document_id, chunk_no)
    return found.payload["text"] if found else None


def point_counts() -> dict[int, int]:
    """Points per document id across the whole index (for reconciliation, not for requests)."""
    counts: dict[int, int] = {}
    for document_id in engine().document_ids():
        counts[document_id] = counts.get(document_id, 0) + 1
    return counts
