"""Retrieval quality on a BEIR-format dataset: loading, ingestion through the real chunk and
index code, and the standard ranking metrics (computed here, as BEIR's pytrec_eval does)."""

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingestion import index, pipeline
from ingestion.parsing import Page

Qrels = dict[str, dict[str, int]]  # query id → document id → graded relevance


@dataclass
class Dataset:
    corpus: dict[str, tuple[str, str]]  # document id → (title, text)
    queries: dict[str, str]
    qrels: Qrels


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_beir(directory: Path, split: str = "test", limit: int | None = None) -> Dataset:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv. With `limit`, the first `limit` judged
    queries, their relevant documents and the first 20 × `limit` other documents as distractors."""
    qrels: Qrels = {}
    with (directory / "qrels" / f"{split}.tsv").open(encoding="utf-8") as rows:
        for row in rows:
            query_id, doc_id, score = row.rstrip("\n").split("\t")[:3]
            if query_id == "query-id":
                continue  # the header
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    queries = {
        q["_id"]: q["text"] for q in _jsonl(directory / "queries.jsonl") if q["_id"] in qrels
    }
    corpus = {d["_id"]: (d.get("title", ""), d["text"]) for d in _jsonl(directory / "corpus.jsonl")}
    if limit is not None:
        queries = dict(list(queries.items())[:limit])
        wanted = {doc for q in queries for doc in qrels[q]}
        others = set([d for d in corpus if d not in wanted][: 20 * limit])
        corpus = {d: corpus[d] for d in corpus if d in wanted or d in others}
    qrels = {q: qrels[q] for q in queries}
    return Dataset(corpus, queries, qrels)


def ingest(dataset: Dataset, collection_id: int, progress: Callable[[str], None]) -> list[str]:
    """Chunk and index every document; returns the dataset ids by their integer document id."""
    doc_ids = list(dataset.corpus)
    sources: list[index.Source] = []
    started, chunks = time.monotonic(), 0
    for number, doc_id in enumerate(doc_ids):
        title, text = dataset.corpus[doc_id]
        sha256 = hashlib.sha256(text.encode()).hexdigest()
        sources.append(
            index.Source(collection_id, number, sha256, title, pipeline.chunk([Page(1, text)]))
        )
        if sum(len(s.chunks) for s in sources) >= 256 or number == len(doc_ids) - 1:
            chunks += len(index.put(sources))
            sources = []
            rate = chunks / (time.monotonic() - started)
            progress(
                f"indexed {number + 1}/{len(doc_ids)} documents, {chunks} chunks, {rate:.1f}/s"
            )
    return doc_ids


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    gains = [relevant.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1 / rank
    return 0.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0


@dataclass
class Scores:
    ndcg10: list[float] = field(default_factory=list)
    recall10: list[float] = field(default_factory=list)
    recall100: list[float] = field(default_factory=list)
    mrr10: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    top_score: list[float] = field(default_factory=list)

    def add(self, ranked: list[str], relevant: dict[str, int], ms: float, top: float) -> None:
        self.ndcg10.append(ndcg_at(ranked, relevant, 10))
        self.recall10.append(recall_at(ranked, relevant, 10))
        self.recall100.append(recall_at(ranked, relevant, 100))
        self.mrr10.append(mrr_at(ranked, relevant, 10))
        self.latency_ms.append(ms)
        self.top_score.append(top)

    def row(self) -> dict[str, float]:
        def mean(values: list[float]) -> float:
            return sum(values) / len(values) if values else 0.0

        return {
            "nDCG@10": mean(self.ndcg10),
            "Recall@10": mean(self.recall10),
            "Recall@100": mean(self.recall100),
            "MRR@10": mean(self.mrr10),
            "p50 ms": percentile(self.latency_ms, 50),
            "p95 ms": percentile(self.latency_ms, 95),
        }


def embedding_latency(dataset: Dataset) -> list[float]:
    """Embedding each query alone: the part of search latency that is not Qdrant's."""
    timings = []
    for text in dataset.queries.values():
        started = time.perf_counter()
        index.embed([text])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def evaluate(dataset: Dataset, doc_ids: list[str], collection_id: int, mode: str) -> Scores:
    """Search every query (top 100 documents, one chunk each), timing embedding + search."""
    scores = Scores()
    index.search("warm up", [collection_id], 10, mode=mode)
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        hits = index.search(text, [collection_id], 100, mode=mode, per_document=1)
        ms = (time.perf_counter() - started) * 1000
        ranked = [doc_ids[h.document_id] for h in hits]
        scores.add(ranked, dataset.qrels[query_id], ms, max((h.score for h in hits), default=0))
    return scores
