"""The only code that talks to the vector store or loads the embedder.

One index holds every chunk. Each point carries `collection_id` (the tenant key every search is
filtered on), `document_id`, `document_sha256`, `chunk_no`, `page`, `title`, `heading`, `text`,
and two vectors: `dense` (MiniLM, cosine) and `lexical` (BM25 term weights, IDF applied by the
engine). Search fuses both inside the engine. Point ids are deterministic, so a redelivered task
overwrites instead of duplicating.

- embedder.py: the embedding model; engine.py: the interface and the choice of engine;
  edge.py / server.py: the two engines; writes.py: put, replace, delete; retrieval.py: search.
"""

from ingestion.index.embedder import (
    VECTOR_SIZE,
    count_tokens,
    embed,
    embedder,
    model_path,
    reranker,
)
from ingestion.index.engine import (
    DENSE,
    LEXICAL,
    MODES,
    IndexUnavailable,
    ScopeMissing,
    close,
    engine,
)
from ingestion.index.retrieval import Hit, join, search
from ingestion.index.writes import (
    Chunk,
    Source,
    count,
    delete,
    indexed_text,
    passage,
    point_counts,
    point_id,
    put,
    replace,
)


def optimize() -> bool:
    return engine().optimize()


def ping() -> None:
    engine().ping()


__all__ = [
    "DENSE", "LEXICAL", "MODES", "VECTOR_SIZE", "Chunk", "Hit", "IndexUnavailable",
    "ScopeMissing", "Source", "close", "count", "count_tokens", "delete", "embed", "embedder",
    "engine", "indexed_text", "join", "model_path", "optimize", "passage", "ping",
    "point_counts", "point_id", "put", "replace", "reranker", "search",
]  # fmt: skip
