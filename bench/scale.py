"""Scale benchmark of the embedded index: synthetic chunks shaped like Enclave's, written into a
Qdrant Edge shard through `EdgeEngine` at each size, then searched. Not a test: run it by hand.

    python bench/scale.py                              # 100k and 1M points (20-30 minutes)
    python bench/scale.py --sizes 2000,4000 --queries 20 --window 1000 --hnsw-min-points 1000

Each size is loaded from scratch into its own shard with the same seed (the 1M shard starts with
the 100k shard's points), so every size is measured in the same state: nothing optimised. The
upsert rate is taken over the last --window points written, so the rates at two sizes compare
like for like; the baseline is the first size, measured in the same run. Then hybrid, dense and
sparse queries under one collection's scope, memory and disk; then `optimize()` (HNSW built in
a child process) and the same queries again, where --budget allows.

Points carry the payload of ingestion/index/writes.py's points(): 8 collections, documents of
5-80 chunks, ~800-character texts (drawn from a pool), 384-d unit vectors around 256 topic
centroids, and sparse vectors of ~60-120 terms from a Zipf-like 50k-term vocabulary with BM25
term-frequency weights (lexical.document_vector's formula). No model, database or settings.
"""

import argparse
import hashlib
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")  # read lazily, never here

from ingestion.index.edge import EdgeEngine  # noqa: E402
from ingestion.index.engine import Point, Query  # noqa: E402
from ingestion.index.writes import WRITE_BATCH, point_id  # noqa: E402

DIM, VOCAB, TOPICS, COLLECTIONS = 384, 50_000, 256, 8
K1, B, AVG_TERMS = 1.2, 0.75, 100.0  # settings.BM25_* defaults
TOPIC_SHARE = 0.35  # of a chunk's tokens drawn from its topic's own slice of the vocabulary
MODES = ("hybrid", "dense", "sparse")


class Corpus:
    """A deterministic stream of chunks: the same seed gives the same points in the same order."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = np.random.default_rng(seed + 1)
        centroids = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        # Term ids look like lexical.term_id's: 32-bit hashes, one per vocabulary rank.
        self.term_ids = rng.choice(2**32 - 1, size=VOCAB, replace=False).astype(np.int64)
        zipf = 1.0 / (np.arange(VOCAB) + 2.7) ** 1.0
        self.cdf = np.cumsum(zipf / zipf.sum())
        self.topic_offset = rng.integers(0, VOCAB, size=TOPICS)
        words = [
            "".join(rng.choice(list("abcdefghijklmnoprstuvwy"), n))
            for n in rng.integers(2, 11, size=3000)
        ]
        self.texts = [_text(rng, words, 800) for _ in range(500)]
        self.headings = [" ".join(rng.choice(words, 3)).title() for _ in range(200)]

    def ranks(self, topics: np.ndarray, tokens: int, top: int = VOCAB) -> np.ndarray:
        """Vocabulary ranks of `tokens` tokens per row: the global Zipf law (folded into the
        `top` ranks), and a share of each topic's own terms (the law shifted into its slice)."""
        ranks = np.searchsorted(self.cdf, self.rng.random((len(topics), tokens)))
        ranks = np.minimum(ranks, VOCAB - 1) % top
        own = self.rng.random(ranks.shape) < TOPIC_SHARE
        shifted = (ranks + 50 + self.topic_offset[topics][:, None]) % VOCAB
        return np.where(own, shifted, ranks)

    def dense(self, topics: np.ndarray, noise: float) -> np.ndarray:
        v = self.centroids[topics] + noise * self.rng.standard_normal((len(topics), DIM)) / DIM**0.5
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def sparse(self, ranks: np.ndarray) -> tuple[list[int], list[float]]:
        """BM25's saturated term frequency per term, as lexical.document_vector computes it."""
        unique, counts = np.unique(ranks, return_counts=True)
        ids = self.term_ids[unique]
        order = np.argsort(ids)
        tf = counts[order].astype(np.float64)
        norm = K1 * (1 - B + B * len(ranks) / AVG_TERMS)
        return ids[order].tolist(), (tf * (K1 + 1) / (tf + norm)).tolist()

    def documents(self) -> Iterator[tuple[int, int, int, int]]:
        """(collection, document id, topic, chunks) for ever."""
        document_id = 0
        while True:
            document_id += 1
            yield (
                int(self.rng.integers(1, COLLECTIONS + 1)),
                document_id,
                int(self.rng.integers(TOPICS)),
                int(self.rng.integers(5, 81)),
            )

    def batches(self, total: int) -> Iterator[list[Point]]:
        chunks = (
            (collection, document_id, topic, chunk_no)
            for collection, document_id, topic, n in self.documents()
            for chunk_no in range(n)
        )
        for start in range(0, total, WRITE_BATCH):
            batch = [next(chunks) for _ in range(min(WRITE_BATCH, total - start))]
            topics = np.array([t for _, _, t, _ in batch])
            vectors = self.dense(topics, noise=1.0).tolist()
            # 65-140 tokens give ~60-120 distinct terms under this law.
            lengths = self.rng.integers(65, 141, size=len(batch))
            ranks = self.ranks(topics, int(lengths.max()))
            points = []
            for i, (collection, document_id, _, chunk_no) in enumerate(batch):
                sha = hashlib.sha256(str(document_id).encode()).hexdigest()
                points.append(
                    Point(
                        id=point_id(document_id, sha, chunk_no),
                        dense=vectors[i],
                        sparse=self.sparse(ranks[i, : lengths[i]]),
                        payload={
                            "collection_id": str(collection),
                            "document_id": document_id,
                            "document_sha256": sha,
                            "chunk_no": chunk_no,
                            "page": chunk_no // 3 + 1,
                            "title": f"Document {document_id}",
                            "heading": self.headings[(document_id + chunk_no // 10) % 200],
                            "text": self.texts[(document_id * 31 + chunk_no) % 500],
                        },
                    )
                )
            yield points

    def queries(self, n: int, seed: int) -> list[Query]:
        """Hybrid queries as retrieval.search() builds them: a question's vector near a topic,
        3-8 distinct terms of weight 1.0, one collection in scope."""
        rng = np.random.default_rng(seed)
        topics = rng.integers(TOPICS, size=n)
        vectors = self.dense(topics, noise=1.5).tolist()
        ranks = self.ranks(topics, 8, top=5_000)  # questions use words documents use
        result = []
        for i in range(n):
            ids = sorted({int(t) for t in self.term_ids[ranks[i, : rng.integers(3, 9)]]})
            result.append(
                Query(
                    dense=vectors[i],
                    sparse=(ids, [1.0] * len(ids)),
                    collection_ids=[int(rng.integers(1, COLLECTIONS + 1))],
                    limit=15,
                    mode="hybrid",
                    candidates=50,
                )
            )
        return result


def _text(rng: np.random.Generator, words: list[str], length: int) -> str:
    out: list[str] = []
    size = 0
    while size < length:
        sentence = " ".join(rng.choice(words, int(rng.integers(6, 18)))).capitalize() + "."
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


@dataclass
class Result:
    size: int
    rate: float = 0.0  # points/s over the window
    window: int = 0
    load_s: float = 0.0  # wall, generation included
    upsert_s: float = 0.0  # inside EdgeEngine.upsert only
    bursts_s: list[float] = field(default_factory=list)  # optimize() after each --burst
    latency: dict[str, list[float]] = field(default_factory=dict)  # ms per mode
    peak_rss: int = 0
    rss: int = 0
    disk: int = 0
    segments: int = 0
    optimize: str = ""  # why not measured, when it was not
    optimize_s: float = 0.0
    child_cpu_s: float = 0.0
    child_peak_rss: int = 0
    optimized: dict[str, list[float]] = field(default_factory=dict)
    recall: float = 0.0  # dense top-15 after HNSW vs exact before
    disk_optimized: int = 0


def load(engine: EdgeEngine, corpus: Corpus, result: Result, window: int, burst: int) -> None:
    """Write the points; with `burst`, optimise after every `burst` points, as the worker does
    when its queue drains after a burst of uploads (not counted in the upsert rate)."""
    timings: list[tuple[int, float]] = []  # (points written after the batch, seconds)
    written = 0
    started = time.perf_counter()
    for points in corpus.batches(result.size):
        t = time.perf_counter()
        engine.upsert(points)
        timings.append((written + len(points), time.perf_counter() - t))
        written += len(points)
        if burst and written // burst > (written - len(points)) // burst:
            t = time.perf_counter()
            engine.optimize()
            result.bursts_s.append(time.perf_counter() - t)
    engine.flush()
    result.load_s = time.perf_counter() - started
    result.upsert_s = sum(s for _, s in timings)
    result.window = min(window, result.size)
    tail = [(n, s) for n, s in timings if n > result.size - result.window]
    result.rate = (tail[-1][0] - tail[0][0] + WRITE_BATCH) / sum(s for _, s in tail)


def timed(engine: EdgeEngine, queries: list[Query]) -> dict[str, list[float]]:
    """Milliseconds per query, per mode: a few unmeasured queries first to warm caches."""
    latency: dict[str, list[float]] = {}
    for mode in MODES:
        batch = [_mode(q, mode) for q in queries]
        for q in batch[:5]:
            engine.query(q)
        times = []
        for q in batch:
            t = time.perf_counter()
            found = engine.query(q)
            times.append((time.perf_counter() - t) * 1000)
            # A handful of terms may match nothing in a small scope; the dense side always does.
            assert found or mode == "sparse", f"a {mode} query found nothing"
        latency[mode] = times
    return latency


def _mode(query: Query, mode: str) -> Query:
    from dataclasses import replace

    return replace(query, mode=mode)


def recall(engine: EdgeEngine, queries: list[Query], exact: list[set[str]]) -> float:
    found = [{f.id for f in engine.query(_mode(q, "dense"))} for q in queries]
    return statistics.mean(len(a & b) / len(b) for a, b in zip(found, exact, strict=True))


def rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def disk_usage(path: Path) -> int:
    """Bytes allocated, as du counts them (mmap files may be sparse)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def measure(
    size: int, root: Path, args: argparse.Namespace, results: list[Result], started: float
) -> Result:
    result = Result(size)
    path = root / f"shard-{size}"
    engine = EdgeEngine(path, hnsw_min_points=args.hnsw_min_points)
    corpus = Corpus(args.seed)
    load(engine, corpus, result, args.window, args.burst)
    assert engine.count() == size, engine.count()
    queries = Corpus(args.seed).queries(args.queries, args.seed + 7)  # the same at every size
    result.latency = timed(engine, queries)
    result.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result.rss = rss_now()
    result.disk = disk_usage(path)
    with engine._lock:  # the bench reads the shard's info as optimize() does
        result.segments = engine._shard.info().segments_count
    print(
        f"[{time.perf_counter() - started:.0f} s] {size:,} points loaded and searched", flush=True
    )

    projected = _projected_optimize(size, results)
    elapsed = time.perf_counter() - started
    if size not in args.optimize_at:
        result.optimize = "not asked (--optimize-at)"
    elif projected and elapsed + projected > args.budget:
        result.optimize = f"skipped: ~{projected / 60:.0f} min projected, past --budget"
    else:
        exact = [{f.id for f in engine.query(_mode(q, "dense"))} for q in queries[:50]]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        changed = engine.optimize()
        result.optimize_s = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result.child_cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        result.child_peak_rss = after.ru_maxrss * 1024
        if not changed:
            result.optimize = "optimize() changed nothing"
        else:
            result.optimized = timed(engine, queries)
            result.recall = recall(engine, queries[:50], exact)
            result.disk_optimized = disk_usage(path)
        print(f"[{time.perf_counter() - started:.0f} s] {size:,} points optimised", flush=True)
    engine.close()
    shutil.rmtree(path, ignore_errors=True)
    return result


def _projected_optimize(size: int, results: list[Result]) -> float:
    """HNSW build time at `size`, scaled from the last size built (n·log n, plus a margin)."""
    built = [r for r in results if r.optimize_s]
    if not built:
        return 0.0
    last = built[-1]
    scale = size * np.log(size) / (last.size * np.log(last.size))
    return float(1.3 * last.optimize_s * scale)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def report(results: list[Result], queries: int) -> None:
    base = results[0]
    print("\n### Upserts (EdgeEngine.upsert, batches of 256)\n")
    print(
        "| points | window | rate (points/s) | vs first size | upsert s "
        "| optimize() after bursts s | load wall s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        bursts = f"{sum(r.bursts_s):.0f} ({len(r.bursts_s)}×)" if r.bursts_s else "none"
        print(
            f"| {r.size:,} | last {r.window:,} | {r.rate:,.0f} | {r.rate / base.rate:.2f} "
            f"| {r.upsert_s:.1f} | {bursts} | {r.load_s:.1f} |"
        )
    print(f"\n### Queries, one collection in scope, limit 15, 50 candidates ({queries} each, ms)\n")
    print(
        "| points | index | hybrid p50 | hybrid p95 | dense p50 | dense p95 "
        "| sparse p50 | sparse p95 |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        loaded = "as loaded" if r.bursts_s else "plain"
        for index, latency in ((loaded, r.latency), ("all HNSW", r.optimized)):
            if latency:
                cells = " | ".join(
                    f"{pct(latency[m], 50):.1f} | {pct(latency[m], 95):.1f}" for m in MODES
                )
                print(f"| {r.size:,} | {index} | {cells} |")
    print("\n### Memory and disk (as loaded)\n")
    print("| points | peak RSS MiB | current RSS MiB | shard on disk MiB | segments |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.size:,} | {mib(r.peak_rss)} | {mib(r.rss)} | {mib(r.disk)} | {r.segments} |")
    print("\n### optimize(): HNSW built in a child process on a copy of the shard\n")
    print(
        "| points | optimize() wall s | child CPU s | child peak RSS MiB | shard after MiB "
        "| dense recall@15 vs exact |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if r.optimize:
            print(f"| {r.size:,} | {r.optimize} | | | | |")
        else:
            print(
                f"| {r.size:,} | {r.optimize_s:.1f} | {r.child_cpu_s:.1f} "
                f"| {mib(r.child_peak_rss)} | {mib(r.disk_optimized)} | {r.recall:.3f} |"
            )
    last = results[-1]
    print(
        f"\nupsert rate @{last.size:,} / rate @{base.size:,}: {last.rate / base.rate:.2f} "
        "(target >= 0.8)"
    )
    print(
        f"hybrid p95 @{last.size:,}: {pct(last.latency['hybrid'], 95):.1f} ms as loaded"
        + (f", {pct(last.optimized['hybrid'], 95):.1f} ms with HNSW" if last.optimized else "")
        + " (target <= 50 ms at 1M)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300, help="per mode and index state")
    parser.add_argument("--window", type=int, default=100_000, help="points the rate is over")
    parser.add_argument("--optimize-at", type=ints, default=None, help="sizes (default: all)")
    parser.add_argument(
        "--budget",
        type=float,
        default=25 * 60,
        help="seconds: skip an optimize() projected to end past it",
    )
    parser.add_argument("--hnsw-min-points", type=int, default=10_000)
    parser.add_argument(
        "--burst", type=int, default=0, help="optimize() after every N points written (0: never)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.optimize_at is None:
        args.optimize_at = args.sizes
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="enclave-scale-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` removes root
    results: list[Result] = []
    try:
        for size in args.sizes:
            results.append(measure(size, root, args, results, started))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(results, args.queries)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s; load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
