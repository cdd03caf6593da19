"""The services profile's engine: a Qdrant server through qdrant-client (QDRANT_URL).

Tests run it against qdrant-client's local mode, which receives exactly the requests a server
would; the product never uses local mode itself.
"""

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ingestion.index.embedder import VECTOR_SIZE
from ingestion.index.engine import (
    DENSE,
    INTEGER_INDEXES,
    KEYWORD_INDEX,
    LEXICAL,
    Found,
    IndexReadOnly,
    IndexUnavailable,
    Point,
    Query,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

log = logging.getLogger(__name__)
SCROLL_PAGE = 1024


class ServerEngine:
    def __init__(self, client: "QdrantClient", collection: str, *, read_only: bool = False) -> None:
        self.client = client
        self.collection = collection
        # The web tier: it searches and counts; deleting, writing and creating are the workers'.
        self.read_only = read_only
        # qdrant-client's local mode (the tests' stand-in) is not safe for concurrent use; a
        # server is, and the lock costs it nothing measurable.
        self._lock = threading.RLock()
        self._ready = False

    def _ensure(self) -> None:
        """Create the collection and its payload indexes once; recreate an old schema. A
        read-only process waits for a worker to do it."""
        from qdrant_client import models

        if self._ready:
            return
        with self._lock:
            if self.client.collection_exists(self.collection):
                params = self.client.get_collection(self.collection).config.params
                sparse = params.sparse_vectors or {}
                if (
                    isinstance(params.vectors, dict)
                    and DENSE in params.vectors
                    and LEXICAL in sparse
                ):
                    self._ready = True
                    return
                if self.read_only:
                    raise IndexUnavailable(
                        f"Qdrant collection {self.collection} has an old schema: a worker "
                        "recreates it when it starts."
                    )
                # Points of the single-vector schema cannot gain a lexical vector in place.
                log.error(
                    "Qdrant collection %s has the old single-vector schema: recreating it for "
                    "hybrid search; run reconcile_index to index every document again.",
                    self.collection,
                )
                self.client.delete_collection(self.collection)
            elif self.read_only:
                raise IndexUnavailable(
                    f"Qdrant collection {self.collection} does not exist yet: a worker creates "
                    "it when it starts."
                )
            self.client.create_collection(
                self.collection,
                vectors_config={
                    DENSE: models.VectorParams(size=VECTOR_SIZE, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            self.client.create_payload_index(
                self.collection,
                KEYWORD_INDEX,
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            for field in INTEGER_INDEXES:
                self.client.create_payload_index(
                    self.collection,
                    field,
                    models.IntegerIndexParams(
                        type=models.IntegerIndexType.INTEGER, lookup=True, range=False
                    ),
                )
            self._ready = True

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._ensure()
        with self._lock:
            return getattr(self.client, method)(self.collection, *args, **kwargs)

    def _writable(self) -> None:
        if self.read_only:
            raise IndexReadOnly("this process's Qdrant key is read-only: the workers write")

    def upsert(self, points: list[Point]) -> None:
        from qdrant_client import models

        self._writable()
        structs = [
            models.PointStruct(
                id=p.id,
                vector={DENSE: p.dense, LEXICAL: _sparse(p.sparse)},
                payload=p.payload,
            )
            for p in points
        ]
        self._call("upsert", structs, wait=True)

    def delete(self, document_id: int, keep: list[str] | None = None) -> None:
        from qdrant_client import models

        self._writable()
        where = _document(document_id)
        if keep:
            where.must_not = [models.HasIdCondition(has_id=list(keep))]
        self._call("delete", models.FilterSelector(filter=where), wait=True)

    def count(self, document_id: int | None = None) -> int:
        where = None if document_id is None else _document(document_id)
        return int(self._call("count", count_filter=where, exact=True).count)

    def query(self, query: Query) -> list[Found]:
        from qdrant_client import models

        scope = models.Filter(
            must=[models.FieldCondition(key=KEYWORD_INDEX, match=models.MatchAny(any=query.scope))]
        )
        idf = None
        if query.scoped_idf:
            idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=scope))
        sparse = _sparse(query.sparse)
        kwargs: dict[str, Any] = {"with_payload": True, "with_vectors": [DENSE]}
        if query.mode == "hybrid":
            kwargs["prefetch"] = [
                models.Prefetch(
                    query=query.dense, using=DENSE, filter=scope, limit=query.candidates
                ),
                models.Prefetch(
                    query=sparse, using=LEXICAL, filter=scope, limit=query.candidates, params=idf
                ),
            ]
            rrf = models.Rrf(k=query.rrf_k, weights=list(query.weights))
            # The scope sits on each prefetch: an outer filter would be applied to each again.
            kwargs["query"] = models.RrfQuery(rrf=rrf)
        elif query.mode == "dense":
            kwargs.update(query=query.dense, using=DENSE, query_filter=scope)
        else:
            kwargs.update(query=sparse, using=LEXICAL, query_filter=scope, search_params=idf)
        points = self._call("query_points", limit=query.limit, **kwargs).points
        return [
            Found(
                id=str(p.id),
                payload=p.payload or {},
                dense=(p.vector or {}).get(DENSE),  # type: ignore[union-attr]
                score=p.score,
            )
            for p in points
        ]

    def retrieve(self, ids: list[str], *, dense: bool = False) -> list[Found]:
        vectors = [DENSE] if dense else False
        points = self._call("retrieve", ids, with_payload=True, with_vectors=vectors)
        return [
            Found(id=str(p.id), payload=p.payload or {}, dense=(p.vector or {}).get(DENSE))
            for p in points
        ]

    def chunk(self, document_id: int, chunk_no: int) -> Found | None:
        from qdrant_client import models

        where = _document(document_id)
        where.must.append(  # type: ignore[union-attr]
            models.FieldCondition(key="chunk_no", match=models.MatchValue(value=chunk_no))
        )
        points, _ = self._call("scroll", scroll_filter=where, limit=1, with_payload=True)
        return Found(id=str(points[0].id), payload=points[0].payload or {}) if points else None

    def document_ids(self) -> Iterator[int]:
        offset = None
        while True:
            points, offset = self._call(
                "scroll",
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=["document_id"],
                with_vectors=False,
            )
            for p in points:
                yield int((p.payload or {})["document_id"])
            if offset is None:
                return

    def payload_indexes(self) -> set[str]:
        return set(self._call("get_collection").payload_schema)

    def optimize(self) -> bool:
        return False  # a Qdrant server builds its indexes itself, in the background

    def ping(self) -> None:
        """The server answers and the collection exists (a worker creates it: see _ensure)."""
        self._ensure()
        with self._lock:
            self.client.get_collections()

    def close(self) -> None:
        with self._lock:
            self.client.close()


def _document(document_id: int) -> Any:
    from qdrant_client import models

    return models.Filter(
        must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
    )


def _sparse(vector: tuple[list[int], list[float]]) -> Any:
    from qdrant_client import models

    return models.SparseVector(indices=vector[0], values=vector[1])
