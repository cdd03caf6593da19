"""The embedded profile's engine: a Qdrant Edge shard (Qdrant's Rust engine, in this process).

One process may open a shard folder at a time (its write-ahead log is locked), so in the
embedded profile everything that touches the index runs in the web process.
"""

import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingestion.index.embedder import VECTOR_SIZE
from ingestion.index.engine import (
    DENSE,
    INTEGER_INDEXES,
    KEYWORD_INDEX,
    LEXICAL,
    Found,
    IndexUnavailable,
    Point,
    Query,
)

log = logging.getLogger(__name__)
SCROLL_PAGE = 4096
CHILD_ENV = {"PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH"}
SEGMENTS, MAX_SEGMENT_POINTS = 8, 250_000  # merges stop there: no rebuild grows past it
# The child that builds HNSW on a copy of the shard; prints whether it changed anything.
OPTIMIZE = "import sys, qdrant_edge as e; s = e.EdgeShard.load(sys.argv[1]); print(s.optimize())"


class EdgeEngine:
    def __init__(self, path: Path, *, hnsw_min_points: int = 10_000) -> None:
        self.path = path
        # Fewer unindexed points than this are searched exactly (a few ms under the tenant
        # filter); more get an HNSW graph. Qdrant's threshold is in kilobytes of vectors.
        self.hnsw_min_points = hnsw_min_points
        self._lock = threading.RLock()  # guards the shard handle (swapped after optimising)
        self._writes = threading.Lock()  # writers and the optimiser take turns
        self._shard = self._open()

    # --- opening, recovery and errors -------------------------------------------------------
    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def _clean_up(self) -> None:
        """Remove what an interrupted optimisation left beside the shard (see optimize()).
        Called once the shard is open: the folder lock proves no other process is using it."""
        shutil.rmtree(self._sibling(".old"), ignore_errors=True)
        shutil.rmtree(self._sibling(".optimizing"), ignore_errors=True)

    def _config(self) -> Any:
        import qdrant_edge as e

        kb_per_point = VECTOR_SIZE * 4 / 1024
        optimizers = e.EdgeOptimizersConfig(
            indexing_threshold=max(1, int(self.hnsw_min_points * kb_per_point)),
            # Each optimize() then indexes what was written since the last one; the default
            # (as many segments as cores) would merge and rebuild the whole shard every time.
            default_segment_number=SEGMENTS,
            max_segment_size=int(MAX_SEGMENT_POINTS * kb_per_point),
        )
        return e.EdgeConfig(
            vectors={DENSE: e.EdgeVectorParams(size=VECTOR_SIZE, distance=e.Distance.Cosine)},
            sparse_vectors={LEXICAL: e.EdgeSparseVectorParams(modifier=e.Modifier.Idf)},
            optimizers=optimizers,
        )

    def _open(self) -> Any:
        import qdrant_edge as e

        old = self._sibling(".old")
        if not self.path.exists() and old.exists():
            old.rename(self.path)  # stopped between optimize()'s two renames: the old one
        try:
            if self.path.exists() and any(self.path.iterdir()):
                shard = e.EdgeShard.load(str(self.path), self._config())
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                shard = e.EdgeShard.create(str(self.path), self._config())
        except Exception as exc:  # the binding raises plain Exception for everything
            raise self._unavailable(exc) from exc
        self._clean_up()
        indexed = set(shard.info().payload_schema)
        if KEYWORD_INDEX not in indexed:
            tenant = e.KeywordIndexParams(is_tenant=True)
            shard.update(e.UpdateOperation.create_field_index(KEYWORD_INDEX, tenant))
        for field in set(INTEGER_INDEXES) - indexed:
            lookup = e.IntegerIndexParams(lookup=True, range=False)
            shard.update(e.UpdateOperation.create_field_index(field, lookup))
        return shard

    def _unavailable(self, exc: Exception) -> IndexUnavailable:
        if "WouldBlock" in str(exc):
            return IndexUnavailable(
                f"The vector index {self.path} is open in another process, most likely the "
                "running Enclave server (the embedded profile lets one process open it). Stop "
                "the server and run this again, or set QDRANT_URL to use a Qdrant server."
            )
        return IndexUnavailable(
            f"The vector index {self.path} cannot be read ({exc}). The documents are safe in "
            f"the database and media folder: move the index aside (mv {self.path} "
            f"{self.path}.broken) and start Enclave again: it indexes every document again from "
            "its stored file. With the server stopped, `python manage.py reconcile_index` does "
            "the same."
        )

    # --- requests ---------------------------------------------------------------------------
    def upsert(self, points: list[Point]) -> None:
        import qdrant_edge as e

        batch = [
            e.Point(
                id=p.id,
                vector={DENSE: p.dense, LEXICAL: e.SparseVector(*p.sparse)},
                payload=p.payload,
            )
            for p in points
        ]
        with self._writes, self._lock:
            self._shard.update(e.UpdateOperation.upsert_points(batch))

    def delete(self, document_id: int, keep: list[str] | None = None) -> None:
        import qdrant_edge as e

        where = _document(document_id)
        if keep:
            where = e.Filter(
                must=where.must, must_not=[e.HasIdCondition({uuid.UUID(i) for i in keep})]
            )
        with self._writes, self._lock:
            self._shard.update(e.UpdateOperation.delete_points_by_filter(where))

    def count(self, document_id: int | None = None) -> int:
        import qdrant_edge as e

        where = None if document_id is None else _document(document_id)
        with self._lock:
            return int(self._shard.count(e.CountRequest(exact=True, filter=where)))

    def query(self, query: Query) -> list[Found]:
        import qdrant_edge as e

        scope = e.Filter(must=[e.FieldCondition(key=KEYWORD_INDEX, match=e.MatchAny(query.scope))])
        idf = e.SearchParams(idf=e.IdfParams(corpus=scope)) if query.scoped_idf else None
        dense = e.Query.Nearest(query.dense, using=DENSE)
        sparse = e.Query.Nearest(e.SparseVector(*query.sparse), using=LEXICAL)
        if query.mode == "hybrid":
            request = e.QueryRequest(
                limit=query.limit,
                # The scope sits on each prefetch; fusion ranks only what they found.
                prefetches=[
                    e.Prefetch(limit=query.candidates, query=dense, filter=scope),
                    e.Prefetch(limit=query.candidates, query=sparse, filter=scope, params=idf),
                ],
                # (The stub types Fusion.Rrf's instances apart from Fusion; they are one.)
                query=e.Fusion.Rrf(k=query.rrf_k, weights=list(query.weights)),  # type: ignore[arg-type]
                with_payload=True,
                with_vector=[DENSE],
            )
        else:
            request = e.QueryRequest(
                limit=query.limit,
                query=dense if query.mode == "dense" else sparse,
                filter=scope,
                params=idf if query.mode == "sparse" else None,
                with_payload=True,
                with_vector=[DENSE],
            )
        with self._lock:
            found = self._shard.query(request)
        return [_found(p) for p in found]

    def retrieve(self, ids: list[str], *, dense: bool = False) -> list[Found]:
        with self._lock:
            records = self._shard.retrieve(ids, with_payload=True, with_vector=dense)
        return [_found(r) for r in records]

    def chunk(self, document_id: int, chunk_no: int) -> Found | None:
        import qdrant_edge as e

        where = _document(document_id)
        where = e.Filter(
            must=[*where.must, e.FieldCondition(key="chunk_no", match=e.MatchValue(chunk_no))]
        )
        with self._lock:
            records, _ = self._shard.scroll(
                e.ScrollRequest(limit=1, filter=where, with_payload=True)
            )
        return _found(records[0]) if records else None

    def document_ids(self) -> Iterator[int]:
        import qdrant_edge as e

        offset = None
        while True:
            request = e.ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, with_payload=["document_id"], with_vector=False
            )
            with self._lock:
                records, offset = self._shard.scroll(request)
            for record in records:
                yield int(record.payload["document_id"])
            if offset is None:
                return

    def payload_indexes(self) -> set[str]:
        with self._lock:
            return set(self._shard.info().payload_schema)

    def ping(self) -> None:
        with self._lock:
            self._shard.info()

    def indexed_vectors(self) -> int:
        """Dense vectors in HNSW graphs plus sparse vectors (always indexed)."""
        with self._lock:
            return int(self._shard.info().indexed_vectors_count)

    def optimize(self) -> bool:
        """Build the HNSW graphs of points not yet indexed, without holding up questions.

        The Python binding keeps the GIL for the whole of `EdgeShard.optimize()` (minutes at a
        million points), which would freeze every web thread. So a child process optimises a
        flushed copy of the shard while questions go on against this one; writers wait; then
        the optimised copy takes the shard's place. A crash at any step leaves the old shard
        or the new one complete (`_open`).
        """
        with self._writes:
            with self._lock:
                info = self._shard.info()
                # Sparse vectors are always indexed; dense ones once their segment is optimised.
                if 2 * info.points_count - info.indexed_vectors_count < self.hnsw_min_points:
                    return False
                self._shard.flush()
            copy = self._sibling(".optimizing")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(self.path, copy)
            child = subprocess.run(
                [sys.executable, "-c", OPTIMIZE, str(copy)],
                capture_output=True,
                text=True,
                env={k: v for k, v in os.environ.items() if k in CHILD_ENV},  # no secrets
            )
            if child.returncode or child.stdout.strip() != "True":
                shutil.rmtree(copy, ignore_errors=True)
                if child.returncode:
                    log.error("optimising %s failed: %s", self.path, child.stderr[-2000:])
                return False
            old = self._sibling(".old")
            with self._lock:
                self._shard.close()
                self.path.rename(old)
                copy.rename(self.path)
                try:
                    self._shard = self._open()  # removes the old shard once this one is open
                except IndexUnavailable:
                    log.exception("the optimised copy of %s does not open: kept the old", old)
                    shutil.rmtree(self.path)
                    old.rename(self.path)
                    self._shard = self._open()
                    return False
            log.info("vector index %s optimised (HNSW built)", self.path)
            return True

    def flush(self) -> None:
        with self._lock:
            self._shard.flush()

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the shard folder (backup): flushed, with writers and the
        optimiser held off until the copy is complete; questions wait only for the flush."""
        with self._writes:
            self.flush()
            shutil.copytree(self.path, target)

    def close(self) -> None:
        with self._writes, self._lock:
            self._shard.close()  # flushes, and releases the folder lock


def _document(document_id: int) -> Any:
    import qdrant_edge as e

    return e.Filter(must=[e.FieldCondition(key="document_id", match=e.MatchValue(document_id))])


def _found(point: Any) -> Found:
    vectors = point.vector or {}
    return Found(
        id=str(point.id),
        payload=dict(point.payload or {}),
        dense=vectors.get(DENSE),
        score=getattr(point, "score", 0.0),
    )
