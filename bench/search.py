"""Search benchmark: Enclave's search against the stock llama-index retriever on SciFact, in the
same run, and the effect of scoping BM25's IDF to the searched collections. Prints markdown
tables with the ratios. Not a test: run it by hand.

    python bench/search.py                        # all 5,183 abstracts, all 300 test queries
    python bench/search.py --docs 600 --queries 50
    python bench/search.py --skip-stock           # without the llama-index baseline
    python bench/search.py --idf                  # only: RETRIEVAL_IDF_SCOPE global vs searched

SciFact goes through the real pipeline as in bench/ingest.py (Markdown files of 250 abstracts, a
`# <doc id>` section each), so a hit's section heading is its abstract's id. A "document" is then
a file of 250 abstracts, so searches pass per_document=0: the per-document cap would otherwise
cap abstracts by the file they were uploaded in. Latency is the whole `index.search()` call:
embedding the query, the fused query in the engine, the neighbouring chunks.

`--idf` splits SciFact into 8 collections by a hash of the doc id, adds the long real PDFs of
../shared/fixtures/long-pdfs as three other tenants (clinical trial protocols, aviation accident
reports, federal agency reports) whose vocabulary shifts the global term statistics, and
searches each query only in the collection(s) holding its relevant abstracts.
"""

import argparse
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

from ingest import SCIFACT, SHARED, enclave, load_scifact, ndcg10, scifact_files, setup_django

LONG_PDFS = SHARED / "fixtures" / "long-pdfs"
TENANTS = (
    "nih-clinical-trial-protocols",
    "ntsb-aviation-incident-accident-reports",
    "us-fed-agency-reports",
)
SCIFACT_COLLECTIONS = 8
WARM_UP = 20  # queries searched untimed before each timed pass
K = 10


def percentile(values: list[float], p: float) -> float:
    from ingestion.evaluation import percentile as nearest_rank

    return nearest_rank(values, p)


def distinct(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))


def enclave_pass(
    queries: dict[str, str], scopes: dict[str, list[int]], mode: str
) -> tuple[dict[str, list[str]], list[float]]:
    """Each query once through index.search(), timed whole; the abstracts it ranked."""
    from ingestion import index

    for qid, text in list(queries.items())[:WARM_UP]:
        index.search(text, scopes[qid], K, mode=mode, per_document=0)
    ranked, ms = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = index.search(text, scopes[qid], K, mode=mode, per_document=0)
        ms.append((time.perf_counter() - started) * 1000)
        ranked[qid] = distinct([h.heading for h in hits])
    return ranked, ms


def embed_pass(queries: dict[str, str]) -> list[float]:
    from ingestion import index

    ms = []
    for text in queries.values():
        started = time.perf_counter()
        index.embed([text])
        ms.append((time.perf_counter() - started) * 1000)
    return ms


def stock_pass(retriever, queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:  # noqa: ANN001
    for text in list(queries.values())[:WARM_UP]:
        retriever.retrieve(text)
    ranked, ms = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        nodes = retriever.retrieve(text)
        ms.append((time.perf_counter() - started) * 1000)
        ranked[qid] = distinct([n.node.ref_doc_id or "" for n in nodes])
    return ranked, ms


def row(name: str, ms: list[float], quality: str = "") -> str:
    return f"| {name} | {percentile(ms, 50):.1f} | {percentile(ms, 95):.1f} | {quality} |"


def optimize() -> str:
    """What the worker does once the queue drains: build HNSW if the index is big enough."""
    from ingestion import index

    started = time.perf_counter()
    built = index.optimize()
    return f"HNSW built in {time.perf_counter() - started:.1f} s" if built else "no HNSW needed"


def latency(args: argparse.Namespace, var_dir: str) -> None:
    from ingestion import index

    corpus, queries, qrels = load_scifact(args.docs or None, args.queries or None)
    run = enclave(corpus, Path(var_dir), [])
    indexed = optimize()
    print(
        f"corpus: {len(corpus)} SciFact abstracts, {len(run['texts'])} chunks in one collection "
        f"({run['wall']:.1f} s through the pipeline; {indexed}); {len(queries)} queries, "
        f"top {K}"
    )
    scopes = {qid: [run["collection"]] for qid in queries}
    rows, p95, quality = [], {}, {}
    for mode in ("hybrid", "dense", "sparse"):
        ranked, ms = enclave_pass(queries, scopes, mode)
        quality[mode], p95[mode] = ndcg10(ranked, qrels) / 100, percentile(ms, 95)
        found = sum(len(r) for r in ranked.values()) / len(ranked)
        rows.append(
            row(f"Enclave {mode}, `index.search()`", ms, f"{quality[mode]:.3f} ({found:.1f})")
        )
    rows.append(row("Enclave: embedding the query alone", embed_pass(queries), "—"))
    if not args.skip_stock:
        from ingest import stock_index

        wall, built, client = stock_index(corpus, [])
        retriever = built.as_retriever(similarity_top_k=K)
        ranked, ms = stock_pass(retriever, queries)
        quality["stock"], p95["stock"] = ndcg10(ranked, qrels) / 100, percentile(ms, 95)
        found = sum(len(r) for r in ranked.values()) / len(ranked)
        rows.append(
            row(
                f"stock llama-index dense, `retriever.retrieve()` ({client.count('stock').count} "
                f"nodes, built in {wall:.1f} s)",
                ms,
                f"{quality['stock']:.3f} ({found:.1f})",
            )
        )
    print(
        f"\n| SciFact, {len(queries)} queries | p50 ms | p95 ms | nDCG@10 (abstracts in top {K}) |"
    )
    print("|---|---|---|---|")
    print("\n".join(rows))
    print("\nratios:")
    if "stock" in p95:
        print(
            f"  stock p95 / Enclave hybrid p95: {p95['stock'] / p95['hybrid']:.2f}x (target >= 5)"
        )
        print(f"  Enclave hybrid nDCG@10 - stock: {quality['hybrid'] - quality['stock']:+.3f}")
    print(f"  Enclave hybrid p95: {p95['hybrid']:.1f} ms (target <= 20, embedding included)")
    print(f"  Enclave hybrid nDCG@10: {quality['hybrid']:.3f} (target >= 0.72)")
    index.close()


def ingest_files(name: str, files: list) -> tuple[int, int]:
    """Upload into a new collection and run the real pipeline on each file; (id, chunks)."""
    from ingestion import documents, pipeline
    from ingestion.models import Collection, Document

    collection = Collection.objects.create(name=name)
    for document in documents.upload(collection, files, None):
        pipeline.ingest(document.pk)
    rows = list(Document.objects.filter(collection=collection))
    assert all(d.status == "ready" for d in rows), [(d.original_name, d.error) for d in rows]
    return collection.pk, sum(d.chunks for d in rows)


def idf(args: argparse.Namespace) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import override_settings

    from ingestion import index, pipeline
    from ingestion.parsing import Page

    if not LONG_PDFS.exists():
        sys.exit(f"{LONG_PDFS} is missing: --idf needs the long PDFs as other tenants")
    corpus, queries, qrels = load_scifact(args.docs or None, args.queries or None)
    index.embedder()
    pipeline.chunk([Page(1, "Warm up. The splitter loads its sentence model.")])
    started = time.perf_counter()
    parts: list[dict[str, str]] = [{} for _ in range(SCIFACT_COLLECTIONS)]
    for doc_id, text in corpus.items():
        parts[zlib.crc32(doc_id.encode()) % SCIFACT_COLLECTIONS][doc_id] = text
    home: dict[str, int] = {}
    scifact_chunks = 0
    for number, part in enumerate(parts):
        collection, chunks = ingest_files(f"scifact {number}", scifact_files(part))
        home.update(dict.fromkeys(part, collection))
        scifact_chunks += chunks
    scopes = {qid: sorted({home[d] for d in qrels[qid] if d in home}) for qid in queries}
    print(
        f"SciFact: {len(corpus)} abstracts, {scifact_chunks} chunks in {SCIFACT_COLLECTIONS} "
        f"collections ({time.perf_counter() - started:.1f} s, {optimize()}); {len(queries)} "
        f"queries, each searched in the collection(s) of its relevant abstracts "
        f"({sum(map(len, scopes.values())) / len(scopes):.2f} on average), top {K}"
    )

    # (mode, setting) -> (nDCG@10, latencies); "alone": global IDF before the tenants came.
    results: dict[tuple[str, str], tuple[float, list[float]]] = {}

    def measure(mode: str, setting: str) -> None:
        scope = "searched" if setting == "searched" else "global"
        with override_settings(RETRIEVAL_IDF_SCOPE=scope):
            ranked, ms = enclave_pass(queries, scopes, mode)
        results[mode, setting] = ndcg10(ranked, qrels) / 100, ms

    for mode in ("sparse", "hybrid"):
        measure(mode, "alone")

    started = time.perf_counter()
    tenants = []
    for folder in TENANTS:
        pdfs = sorted((LONG_PDFS / folder).glob("*.pdf"), key=lambda p: p.stat().st_size)
        pdfs = pdfs[: args.tenants] if args.tenants else pdfs
        files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in pdfs]
        tenants.append((folder, len(pdfs), ingest_files(folder, files)[1]))
    tenant_chunks = sum(chunks for *_, chunks in tenants)
    print(
        "other tenants: "
        + ", ".join(f"{folder} ({n} PDFs, {chunks} chunks)" for folder, n, chunks in tenants)
        + f"; {tenant_chunks / (tenant_chunks + scifact_chunks):.0%} of the index "
        f"({time.perf_counter() - started:.1f} s, {optimize()})"
    )
    for mode in ("sparse", "hybrid"):
        measure(mode, "global")
        measure(mode, "searched")
    measure("dense", "global")

    labels = {
        "alone": "global, SciFact alone in the index",
        "global": "global, with the other tenants",
        "searched": "searched",
    }
    print("\n| mode | IDF over | nDCG@10 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for (mode, setting), (quality, ms) in results.items():
        label = "— (dense has no IDF)" if mode == "dense" else labels[setting]
        print(
            f"| {mode} | {label} | {quality:.3f} | {percentile(ms, 50):.1f} | "
            f"{percentile(ms, 95):.1f} |"
        )
    print("\nratios (with the other tenants in the index):")
    for mode in ("sparse", "hybrid"):
        alone = results[mode, "alone"][0]
        (wide, wide_ms), (scoped, scoped_ms) = results[mode, "global"], results[mode, "searched"]
        print(
            f"  {mode}: searched - global nDCG@10 {scoped - wide:+.3f} "
            f"(global was {wide - alone:+.3f} against SciFact alone); "
            f"p95 searched / global {percentile(scoped_ms, 95) / percentile(wide_ms, 95):.2f}"
        )
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=0, help="SciFact subset size (0: all)")
    parser.add_argument("--queries", type=int, default=0, help="only the first N test queries")
    parser.add_argument("--skip-stock", action="store_true", help="skip the llama-index retriever")
    parser.add_argument("--idf", action="store_true", help="only: the IDF scope experiment")
    parser.add_argument(
        "--tenants", type=int, default=0, help="--idf: the N smallest PDFs per tenant (0: all)"
    )
    args = parser.parse_args()
    if not SCIFACT.exists():
        sys.exit(f"{SCIFACT} is missing: the benchmark needs ../shared/eval (see README)")
    if not (args.skip_stock or args.idf):
        try:
            import llama_index.embeddings.huggingface  # noqa: F401
            import llama_index.vector_stores.qdrant  # noqa: F401
        except ImportError:
            sys.exit("the stock baseline needs pip install -e '.[bench]' (or pass --skip-stock)")
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)
        if args.idf:
            idf(args)
        else:
            latency(args, var_dir)
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"\n(bench run {time.perf_counter() - started:.0f} s; load average now {load})")


if __name__ == "__main__":
    main()
