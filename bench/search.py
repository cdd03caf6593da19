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
cap abstracts by the file they were uploaded in.

Latency is the whole call: for Enclave `index.search(query, scope, 10)` (embedding the query,
the fused query in the engine, the neighbouring chunks), for the stock path
`retriever.retrieve(query)`, each after 20 queries of warm-up. Enclave's modes take turns query by
query, so load from elsewhere on the machine falls on all of them alike; the stock retriever is
built and timed once they are done. nDCG@10 is given twice: over the abstracts
of the 10 chunks that call returns (an abstract is ~2.4 chunks, so fewer than 10), and over the
first 10 distinct abstracts of a deeper search (untimed), as BEIR scores it.

`--idf` splits SciFact into 8 collections by a hash of the doc id, adds the long real PDFs of
../shared/fixtures/long-pdfs as three other tenants (clinical trial protocols, aviation accident
reports, federal agency reports) whose vocabulary shifts the global term statistics, and
searches each query only in the collection(s) holding its relevant abstracts.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from ingest import (
    SCIFACT,
    SHARED,
    enclave,
    first_docs,
    load_scifact,
    ndcg10,
    scifact_files,
    setup_django,
)

LONG_PDFS = SHARED / "fixtures" / "long-pdfs"
TENANTS = (
    "nih-clinical-trial-protocols",
    "ntsb-aviation-incident-accident-reports",
    "us-fed-agency-reports",
)
SCIFACT_COLLECTIONS = 8
WARM_UP = 20  # queries sent through every caller untimed first
K = 10
DEEP = 40  # chunks searched for the first 10 distinct abstracts


# A caller: (settings it runs under, function of (query id, text) -> the doc ids it ranked).
Caller = tuple[dict, Callable[[str, str], list[str]]]


def timed_in_turns(
    callers: dict[str, Caller], queries: dict[str, str]
) -> dict[str, tuple[dict[str, list[str]], list[float]]]:
    """Every query through every caller in turn, each call timed whole (milliseconds)."""
    from django.test import override_settings

    results: dict[str, tuple[dict[str, list[str]], list[float]]] = {c: ({}, []) for c in callers}
    for number, (qid, text) in enumerate([*list(queries.items())[:WARM_UP], *queries.items()]):
        for name, (overrides, call) in callers.items():
            with override_settings(**overrides):
                started = time.perf_counter()
                ranked = call(qid, text)
                ms = (time.perf_counter() - started) * 1000
            if number >= min(WARM_UP, len(queries)):
                results[name][0][qid] = ranked
                results[name][1].append(ms)
    return results


def searcher(scopes: dict[str, list[int]], mode: str, k: int = K) -> Callable[[str, str], list]:
    from ingestion import index

    def call(qid: str, text: str) -> list[str]:
        hits = index.search(text, scopes[qid], k, mode=mode, per_document=0)
        return first_docs([h.heading for h in hits], K)

    return call


def deep_ndcg(
    queries: dict[str, str], qrels: dict[str, set[str]], scopes: dict, mode: str, idf: str
) -> float:
    """nDCG@10 over the first 10 distinct abstracts (untimed)."""
    from django.test import override_settings

    call = searcher(scopes, mode, DEEP)
    with override_settings(RETRIEVAL_IDF_SCOPE=idf):
        return ndcg10({qid: call(qid, text) for qid, text in queries.items()}, qrels) / 100


def percentile(values: list[float], p: float) -> float:
    from ingestion.evaluation import percentile as nearest_rank

    return nearest_rank(values, p)


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
        f"({run['wall']:.1f} s through the pipeline; {indexed}); {len(queries)} queries, top {K}"
    )
    scopes = {qid: [run["collection"]] for qid in queries}
    names = {mode: f"Enclave {mode}, `index.search()`" for mode in index.MODES}
    callers: dict[str, Caller] = {names[mode]: ({}, searcher(scopes, mode)) for mode in names}

    def embed(_: str, text: str) -> list[str]:
        index.embed([text])
        return []

    embedding = "Enclave: embedding the query alone"
    callers[embedding] = ({}, embed)
    results = timed_in_turns(callers, queries)
    # Stock queries in turn with Enclave's slowed the Enclave call right after each ~9x (hybrid
    # p50 92 ms against 10 ms): so the stock retriever is built and timed after.
    if not args.skip_stock:
        from ingest import stock_index
        from threadpoolctl import threadpool_limits

        wall, built, client = stock_index(corpus, [])
        retriever = built.as_retriever(similarity_top_k=K)

        def retrieve(_: str, text: str) -> list[str]:
            return [n.node.ref_doc_id or "" for n in retriever.retrieve(text)]

        stock = (
            f"stock llama-index dense, `retriever.retrieve()` ({client.count('stock').count} "
            f"nodes, built in {wall:.1f} s)"
        )
        results |= timed_in_turns({stock: ({}, retrieve)}, queries)
        # Back to back, local mode's numpy leaves OpenBLAS threads spinning for a while after
        # each search, which stalls the next query's torch threads on a small machine; with
        # one BLAS thread that cost goes. Both are shown: the first is the stock install's.
        lean = "the same, numpy's BLAS limited to 1 thread"
        with threadpool_limits(1, user_api="blas"):
            results |= timed_in_turns({lean: ({}, retrieve)}, queries)

    print(
        f"\n| SciFact, {len(queries)} queries | p50 ms | p95 ms | nDCG@10 (abstracts in the top "
        f"{K} hits) | nDCG@10 (first 10 abstracts) |"
    )
    print("|---|---|---|---|---|")
    p95 = {name: percentile(ms, 95) for name, (_, ms) in results.items()}
    top = {name: ndcg10(ranked, qrels) / 100 for name, (ranked, _) in results.items()}
    for name, (ranked, ms) in results.items():
        quality = ["—", "—"]
        if name in names.values():
            mode = next(m for m, n in names.items() if n == name)
            found = sum(map(len, ranked.values())) / len(ranked)
            deep = deep_ndcg(queries, qrels, scopes, mode, "global")
            quality = [f"{top[name]:.3f} ({found:.1f} abstracts)", f"{deep:.3f}"]
        elif name != embedding:  # the stock retriever: its 10 nodes are 10 abstracts
            quality = [f"{top[name]:.3f}"] * 2
        print(f"| {name} | {percentile(ms, 50):.1f} | {p95[name]:.1f} | {' | '.join(quality)} |")
    hybrid = names["hybrid"]
    print("\nratios:")
    if not args.skip_stock:
        print(
            f"  stock p95 / Enclave hybrid p95: {p95[stock] / p95[hybrid]:.2f}x (target >= 5); "
            f"{p95[lean] / p95[hybrid]:.2f}x with numpy's BLAS at 1 thread"
        )
        print(f"  Enclave hybrid nDCG@10 - stock: {top[hybrid] - top[stock]:+.3f}")
    print(f"  Enclave hybrid p95: {p95[hybrid]:.1f} ms (target <= 20, embedding included)")
    print(f"  Enclave hybrid nDCG@10: {top[hybrid]:.3f} (target >= 0.72)")
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

    def callers(settings: tuple[str, ...], modes: tuple[str, ...]) -> dict[str, Caller]:
        return {
            f"{mode} {scope}": ({"RETRIEVAL_IDF_SCOPE": scope}, searcher(scopes, mode))
            for mode in modes
            for scope in settings
        }

    # Before the other tenants come, global IDF is SciFact's own: the reference.
    alone = timed_in_turns(callers(("global",), ("sparse", "hybrid")), queries)
    deep = {
        (mode, "alone"): deep_ndcg(queries, qrels, scopes, mode, "global")
        for mode in ("sparse", "hybrid")
    }

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
    mixed = timed_in_turns(
        callers(("global", "searched"), ("sparse", "hybrid")) | callers(("global",), ("dense",)),
        queries,
    )
    for name in mixed:
        mode, scope = name.split()
        deep[mode, scope] = deep_ndcg(queries, qrels, scopes, mode, scope)

    rows = [(f"{m} global", "alone", alone[f"{m} global"]) for m in ("sparse", "hybrid")]
    rows += [(name, name.split()[1], mixed[name]) for name in mixed]
    labels = {
        "alone": "global, SciFact alone in the index",
        "global": "global, with the other tenants",
        "searched": "searched collections",
    }
    print(
        f"\n| mode | IDF over | nDCG@10 (top {K} hits) | nDCG@10 (first 10 abstracts) "
        "| p50 ms | p95 ms |"
    )
    print("|---|---|---|---|---|---|")
    quality = {}
    for name, setting, (ranked, ms) in rows:
        mode = name.split()[0]
        quality[mode, setting] = ndcg10(ranked, qrels) / 100
        label = "— (dense has no IDF)" if mode == "dense" else labels[setting]
        print(
            f"| {mode} | {label} | {quality[mode, setting]:.3f} | {deep[mode, setting]:.3f} | "
            f"{percentile(ms, 50):.1f} | {percentile(ms, 95):.1f} |"
        )
    print("\nratios (with the other tenants in the index):")
    for mode in ("sparse", "hybrid"):
        p95 = {
            scope: percentile(mixed[f"{mode} {scope}"][1], 95) for scope in ("global", "searched")
        }
        print(
            f"  {mode}: searched - global nDCG@10 "
            f"{quality[mode, 'searched'] - quality[mode, 'global']:+.3f} top {K} hits, "
            f"{deep[mode, 'searched'] - deep[mode, 'global']:+.3f} first 10 abstracts "
            f"(global with the tenants - SciFact alone: "
            f"{quality[mode, 'global'] - quality[mode, 'alone']:+.3f}, "
            f"{deep[mode, 'global'] - deep[mode, 'alone']:+.3f}); "
            f"p95 searched / global {p95['searched'] / p95['global']:.2f}"
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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the temporary index goes
    started = time.perf_counter()
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"load average at start: {load}")
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)
        if args.idf:
            idf(args)
        else:
            latency(args, var_dir)
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"\n(bench run {time.perf_counter() - started:.0f} s; load average at the end {load})")


if __name__ == "__main__":
    main()
