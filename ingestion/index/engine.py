"""The vector store seen by the rest of Enclave: one small interface, two engines.

- `EdgeEngine` (embedded profile): Qdrant Edge, Qdrant's Rust engine in this process, one shard
  folder under var/.
- `ServerEngine` (services profile, QDRANT_URL set): a Qdrant server through qdrant-client.

Both store the same points (named vectors `dense` and `lexical`, the same payload) and answer
the same requests; tests/ingestion/test_engines.py holds them to one contract.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

DENSE, LEXICAL = "dense", "lexical"  # the named vectors of every point
MODES = ("hybrid", "dense", "sparse")
# Payload indexes: the tenant key every search filters on, and the keys of every lookup.
KEYWORD_INDEX, INTEGER_INDEXES = "collection_id", ("document_id", "chunk_no")


class ScopeMissing(ValueError):
    """Raised when a search is attempted without a collection filter."""


class IndexUnavailable(RuntimeError):
    """The index cannot be opened: the message says why and what to do."""


class IndexReadOnly(RuntimeError):
    """A write was attempted by a process whose Qdrant key is read-only (QDRANT_READ_ONLY)."""


@dataclass(frozen=True)
class Point:
    id: str
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Found:
    id: str
    payload: dict[str, Any]
    dense: list[float] | None = None
    score: float = 0.0  # the engine's own: fused rank score, cosine or BM25


@dataclass(frozen=True)
class Query:
    """One search: every branch of it is filtered on `collection_ids`."""

    dense: list[float]
    sparse: tuple[list[int], list[float]]  # empty: the query has no lexical terms
    collection_ids: list[int]
    limit: int
    mode: str = "hybrid"
    candidates: int = 50  # per side, before fusion
    weights: tuple[float, float] = (1.0, 1.0)
    rrf_k: int = 60
    scoped_idf: bool = False  # term statistics over the searched collections only

    def __post_init__(self) -> None:
        # The last line of defence: whatever the caller did, no engine ever runs unscoped.
        if not self.collection_ids or not all(isinstance(c, int) for c in self.collection_ids):
            raise ScopeMissing("a search needs at least one collection id")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")

    @property
    def scope(self) -> list[str]:
        return [str(c) for c in self.collection_ids]


class Engine(Protocol):
    def upsert(self, points: list[Point]) -> None: ...
    def delete(self, document_id: int, keep: list[str] | None = None) -> None: ...
    def count(self, document_id: int | None = None) -> int: ...
    def query(self, query: Query) -> list[Found]: ...
    def retrieve(self, ids: list[str], *, dense: bool = False) -> list[Found]: ...
    def chunk(self, document_id: int, chunk_no: int) -> Found | None: ...
    def document_ids(self) -> Iterator[int]: ...
    def payload_indexes(self) -> set[str]: ...
    def optimize(self) -> bool: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


_lock = threading.Lock()
_engines: dict[tuple[str, str], Engine] = {}


def key() -> tuple[str, str]:
    return (settings.QDRANT_URL or str(settings.INDEX_PATH), settings.QDRANT_COLLECTION)


def engine() -> Engine:
    """The engine the settings name, opened once per process (per index and collection)."""
    with _lock:
        if key() not in _engines:
            _engines[key()] = open_engine()
        return _engines[key()]


def open_engine() -> Engine:
    if settings.QDRANT_URL:
        from qdrant_client import QdrantClient

        from ingestion.index.server import ServerEngine

        client = QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY, timeout=10)
        return ServerEngine(client, settings.QDRANT_COLLECTION, read_only=settings.QDRANT_READ_ONLY)
    from ingestion.index.edge import EdgeEngine

    path = Path(settings.INDEX_PATH) / settings.QDRANT_COLLECTION
    return EdgeEngine(path, hnsw_min_points=settings.INDEX_HNSW_MIN_POINTS)


def close() -> None:
    """Flush and release every open engine (the Edge shard's folder lock with it)."""
    with _lock:
        for opened in _engines.values():
            opened.close()
        _engines.clear()
