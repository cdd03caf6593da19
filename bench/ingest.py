"""Ingestion benchmark: Enclave's real pipeline against plain sentence-transformers fp32 and the
stock llama-index path, on the same files, in the same run. Prints times, rates, SciFact
nDCG@10 and the ratios. Not a test: run it by hand.

    python bench/ingest.py                 # the whole SciFact corpus (5,183 abstracts)
    python bench/ingest.py --docs 600      # a subset: every judged abstract plus fillers
    python bench/ingest.py --skip-stock    # without the llama-index baseline
    python bench/ingest.py --big-pdf 600   # only: peak RSS of a worker ingesting a long PDF

SciFact abstracts are written as Markdown files of 250 abstracts each, one `# <doc id>` section
per abstract: the pipeline then parses a few files (as it would in production) while every chunk
still carries its abstract's id as its section, which retrieval quality is scored on.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCIFACT = SHARED / "eval" / "scifact"
MIXED = [
    "pdf/redp5110_sampled.pdf", "pdf/layout-parser-paper-fast.pdf", "docx/word_sample.docx",
    "docx/docx-tables.docx", "pptx/powerpoint_sample.pptx", "xlsx/xlsx_01.xlsx",
    "html/wiki_duck.html", "md/wiki.md", "other/winter-sports.epub", "email/fake-email.eml",
]  # fmt: skip


def setup_django(var_dir: str) -> None:
    os.environ.update(ENCLAVE_VAR_DIR=var_dir, HF_HUB_OFFLINE="1")
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "QDRANT_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def load_scifact(
    limit: int | None, first_queries: int | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    for line in (SCIFACT / "corpus.jsonl").open():
        row = json.loads(line)
        corpus[row["_id"]] = f"{row['title']}. {row['text']}".strip()
    queries = {}
    for line in (SCIFACT / "queries.jsonl").open():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in list((SCIFACT / "qrels" / "test.tsv").open())[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    if first_queries:
        qrels = dict(list(qrels.items())[:first_queries])
    queries = {q: queries[q] for q in qrels}  # the judged ones
    if limit:
        judged = sorted({d for docs in qrels.values() for d in docs})
        keep = judged + [d for d in corpus if d not in judged][: max(0, limit - len(judged))]
        corpus = {d: corpus[d] for d in keep}
    return corpus, queries, qrels


def ndcg10(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    from ingestion.evaluation import ndcg_at  # the app's own, graded; after Django is set up

    scores = [ndcg_at(ranked.get(qid, []), relevant, 10) for qid, relevant in qrels.items()]
    return 100 * sum(scores) / len(scores)


def first_docs(doc_ids: list[str], k: int = 10) -> list[str]:
    seen: list[str] = []
    for d in doc_ids:
        if d not in seen:
            seen.append(d)
    return seen[:k]


def scifact_files(corpus: dict[str, str], name: str = "scifact") -> list:
    """Markdown uploads of 250 abstracts each, one `# <doc id>` section per abstract."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    ids = list(corpus)
    return [
        SimpleUploadedFile(
            f"{name}-{start}.md",
            "\n\n".join(f"# {d}\n\n{corpus[d]}" for d in ids[start : start + 250]).encode(),
        )
        for start in range(0, len(ids), 250)
    ]


def enclave(corpus: dict[str, str], workdir: Path, mixed: list[Path]) -> dict:
    """The real pipeline: upload, parse in the limited child, chunk, embed, write to the index."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ingestion import documents, index, lexical, pipeline
    from ingestion.index import writes
    from ingestion.models import Collection, Document
    from ingestion.parsing import Page

    # Loaded once, outside the timings, as a running worker has them: the embedder, and the
    # sentence splitter with its Punkt model (~1 s on first use).
    index.embedder()
    pipeline.chunk([Page(1, "Warm up. The splitter loads its sentence model.")])
    collection = Collection.objects.create(name=f"bench-{time.time()}")
    files = scifact_files(corpus) + [SimpleUploadedFile(p.name, p.read_bytes()) for p in mixed]
    stages = Stages()
    for module, name, label in (
        (pipeline, "parse", "parse"),
        (pipeline, "chunk", "chunk"),
        (writes, "embed", "embed"),
        (lexical, "document_vector", "term weights"),
        (writes, "write", "write"),
    ):
        stages.wrap(module, name, label)
    started = time.perf_counter()
    created = documents.upload(collection, files, None)
    timeline = []  # (seconds since start, chunks indexed so far) after each document
    for document in created:
        pipeline.ingest(document.pk)
        document.refresh_from_db()
        done = timeline[-1][1] if timeline else 0
        timeline.append((time.perf_counter() - started, done + document.chunks))
    wall = time.perf_counter() - started
    rows = list(Document.objects.filter(collection=collection))
    assert all(d.status == "ready" for d in rows), [(d.original_name, d.error) for d in rows]
    # Read back through the engine, chunk by chunk: what was indexed, not what was meant to be.
    engine = index.engine()
    chunks = []
    for document in rows:
        for chunk_no in range(document.chunks):
            found = engine.chunk(document.pk, chunk_no)
            assert found is not None, (document.original_name, chunk_no)
            chunks.append(found.payload)
    return {
        "wall": wall,
        "stages": dict(stages.spent),  # a copy: the bench's own embedding comes later
        "timeline": timeline,
        "collection": collection.pk,
        "pages": sum(d.pages for d in rows),
        "texts": [index.indexed_text(c["title"], c["heading"], c["text"]) for c in chunks],
        "sections": [c["heading"] for c in chunks],
    }


def timed(call, *args):
    started = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - started, result


class Stages:
    """Wall time the pipeline spends in each stage, by wrapping the real functions."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def wrap(self, module, name: str, label: str) -> None:
        real = getattr(module, name)

        def measured(*args, **kwargs):
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0) + time.perf_counter() - started

        setattr(module, name, measured)


def stock(corpus: dict[str, str], mixed: list[Path], queries: dict[str, str]) -> dict:
    """VectorStoreIndex.from_documents + HuggingFaceEmbedding + QdrantVectorStore, defaults."""
    wall, built, client = stock_index(corpus, mixed)
    retriever = built.as_retriever(similarity_top_k=10)
    ranked = {
        qid: first_docs([n.node.ref_doc_id or "" for n in retriever.retrieve(q)])
        for qid, q in queries.items()
    }
    return {"wall": wall, "ranked": ranked, "chunks": client.count("stock").count}


def stock_index(corpus: dict[str, str], mixed: list[Path]):
    """The stock index as a llama-index user builds it (qdrant-client in memory); its build time."""
    from llama_index.core import (
        Document,
        Settings,
        SimpleDirectoryReader,
        StorageContext,
        VectorStoreIndex,
    )
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from ingestion.index import model_path

    Settings.embed_model = HuggingFaceEmbedding(model_name=model_path(), device="cpu")
    Settings.llm = None
    docs = [Document(text=t, id_=d) for d, t in corpus.items()]
    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="stock")
    started = time.perf_counter()
    extra = SimpleDirectoryReader(input_files=[str(p) for p in mixed]).load_data() if mixed else []
    built = VectorStoreIndex.from_documents(
        docs + extra, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    return time.perf_counter() - started, built, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=0, help="SciFact subset size (0: all)")
    parser.add_argument("--skip-stock", action="store_true", help="skip the llama-index path")
    parser.add_argument("--no-mixed", action="store_true", help="SciFact only")
    parser.add_argument("--queries", type=int, default=0, help="only the first N test queries")
    parser.add_argument(
        "--skip-quality", action="store_true", help="skip nDCG and the fp32 comparison"
    )
    parser.add_argument(
        "--big-pdf", type=int, metavar="PAGES", help="only: peak RSS ingesting a PDF of PAGES pages"
    )
    args = parser.parse_args()
    if not SCIFACT.exists():
        sys.exit(f"{SCIFACT} is missing: the benchmark needs ../shared/eval (see README)")
    if args.big_pdf:
        big_pdf(args.big_pdf)
        return
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)
        from django.conf import settings
        from sentence_transformers import SentenceTransformer

        from ingestion import index

        corpus, queries, qrels = load_scifact(args.docs or None, args.queries or None)
        fixtures = SHARED / "fixtures" / "documents"
        mixed = [] if args.no_mixed else [fixtures / p for p in MIXED if (fixtures / p).exists()]
        print(f"corpus: {len(corpus)} SciFact abstracts + {len(mixed)} mixed files; "
              f"{len(queries)} queries; embedder dtype {settings.EMBEDDING_DTYPE}; "
              f"{torch.get_num_threads()} threads")  # fmt: skip

        run = enclave(corpus, Path(var_dir), mixed)
        texts = run["texts"]
        tokens = sum(index.count_tokens(t) for t in texts)
        own_time, _ = timed(index.embed, texts)
        fp32 = SentenceTransformer(index.model_path(), device="cpu", local_files_only=True)
        # Plain sentence-transformers: its defaults (batch 32, fp32), vectors normalised.
        fp32_time, fp32_vectors = timed(
            lambda: fp32.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        )

        if args.skip_quality:
            print(f"\npipeline {run['wall']:.1f} s, {len(texts)} chunks, {tokens} tokens; "
                  f"embedder alone {own_time:.1f} s, fp32 {fp32_time:.1f} s")  # fmt: skip
            report_rate(run["timeline"])
            print(f"ratios: pipeline / own embedder {run['wall'] / own_time:.2f}, "
                  f"embedder vs fp32 {fp32_time / own_time:.2f}x")  # fmt: skip
            index.close()
            return
        # Retrieval quality: Enclave's search vs an fp32 index of the very same chunks.
        is_scifact = [s in corpus for s in run["sections"]]
        query_vectors = fp32.encode(list(queries.values()), normalize_embeddings=True)
        scores = query_vectors @ fp32_vectors[is_scifact].T
        sections = [s for s, keep in zip(run["sections"], is_scifact, strict=True) if keep]
        ranked_fp32 = {
            qid: first_docs([sections[i] for i in row.argsort()[::-1][:40]])
            for qid, row in zip(queries, scores, strict=True)
        }
        quality = {
            mode: ndcg10(rank(run["collection"], queries, mode), qrels) for mode in index.MODES
        }
        quality["fp32"] = ndcg10(ranked_fp32, qrels)

        print(
            f"\nEnclave pipeline: {run['wall']:.1f} s wall for {len(texts)} chunks, "
            f"{run['pages']} pages, {tokens} tokens"
        )
        print(
            f"  {len(texts) / run['wall']:.1f} chunks/s, {tokens / run['wall']:.0f} tokens/s, "
            f"{run['pages'] / run['wall']:.1f} pages/s"
        )
        print(
            f"  its embedder alone on the same chunks: {own_time:.1f} s "
            f"({tokens / own_time:.0f} tokens/s)"
        )
        print(
            f"  plain sentence-transformers fp32 on the same chunks: {fp32_time:.1f} s "
            f"({tokens / fp32_time:.0f} tokens/s)"
        )
        print(
            f"  SciFact nDCG@10: Enclave hybrid {quality['hybrid']:.2f}, "
            f"dense {quality['dense']:.2f}, sparse {quality['sparse']:.2f}; "
            f"fp32 dense on the same chunks {quality['fp32']:.2f}"
        )
        print("  where the pipeline's wall time went: " + ", ".join(
            f"{name} {spent:.1f} s" for name, spent in run["stages"].items()))  # fmt: skip
        report_rate(run["timeline"])
        print("ratios:")
        print(f"  pipeline wall / own embedder time: {run['wall'] / own_time:.2f} (target <= 1.15)")
        print(f"  embedder token rate vs fp32: {fp32_time / own_time:.2f}x (target >= 2)")
        print(f"  dense nDCG@10 vs fp32 dense: {quality['dense'] - quality['fp32']:+.2f} points")
        if not args.skip_stock:
            result = stock(corpus, mixed, queries)
            stock_ndcg = ndcg10(result["ranked"], qrels)
            print(
                f"\nstock llama-index: {result['wall']:.1f} s wall, {result['chunks']} chunks "
                f"(1024-token chunks, the model reads 256), nDCG@10 {stock_ndcg:.2f}"
            )
            print(f"  Enclave wall / stock wall: {run['wall'] / result['wall']:.2f}")
            print(f"  Enclave hybrid nDCG@10 - stock: {quality['hybrid'] - stock_ndcg:+.2f} points")
        index.close()


def write_pdf(path: Path, pages: int) -> None:
    """A long PDF of SciFact prose: ~45 lines of ~14 words per page, a chapter every 20 pages."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    words = " ".join(load_scifact(None)[0].values()).split()
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number in range(pages):
        start = number * 630 % (len(words) - 630)
        pdf.drawString(72, 800, f"Chapter {number // 20 + 1}, page {number + 1}")
        for line in range(45):
            at = start + line * 14
            pdf.drawString(72, 780 - line * 16, " ".join(words[at : at + 14])[:95])
        pdf.showPage()
    pdf.save()


def big_pdf(pages: int) -> None:
    """Peak memory of a worker process ingesting one long PDF (its parse child apart)."""
    import multiprocessing
    import resource

    try:
        import reportlab  # noqa: F401
    except ImportError:
        sys.exit("--big-pdf writes its PDF with reportlab: pip install -e '.[dev]'")
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        path = Path(var_dir) / "long.pdf"
        # Written by another process, so this one holds only what a worker holds.
        writer = multiprocessing.get_context("spawn").Process(target=write_pdf, args=(path, pages))
        writer.start()
        writer.join()
        setup_django(var_dir)
        from django.core.files.uploadedfile import SimpleUploadedFile

        from ingestion import documents, index, pipeline
        from ingestion.models import Collection

        index.embedder()
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        collection = Collection.objects.create(name="long pdf")
        (document,) = documents.upload(
            collection, [SimpleUploadedFile("long.pdf", path.read_bytes())], None
        )
        started = time.perf_counter()
        pipeline.ingest(document.pk)
        wall = time.perf_counter() - started
        document.refresh_from_db()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{pages}-page PDF ({path.stat().st_size / 2**20:.1f} MiB): {document.status}, "
            f"{document.pages} pages, {document.chunks} chunks in {wall:.1f} s"
        )
        print(
            f"worker peak RSS {peak:.0f} MiB (with the embedder loaded, before the PDF: "
            f"{loaded:.0f} MiB; target < 1,536 MiB); the parse child runs apart, capped at "
            f"PARSE_MEMORY_MB"
        )
        index.close()


def report_rate(timeline: list[tuple[float, int]]) -> None:
    """Chunks/s over the first 1k chunks and over the last document once 10k were indexed."""
    for mark in (1_000, 10_000):
        reached = [(i, t, n) for i, (t, n) in enumerate(timeline) if n >= mark]
        if not reached:
            print(f"  rate at {mark:,} chunks: not reached ({timeline[-1][1]:,} chunks in all)")
            continue
        i, t, n = reached[0]
        before_t, before_n = timeline[i - 1] if i else (0.0, 0)
        print(
            f"  rate at {mark:,} chunks: {(n - before_n) / (t - before_t):.1f} chunks/s "
            f"(the document that took the index from {before_n:,} to {n:,} chunks)"
        )


def rank(collection_id: int, queries: dict[str, str], mode: str) -> dict[str, list[str]]:
    """Enclave's own scoped search; each hit's section heading is its abstract's id."""
    from ingestion import index

    return {
        qid: first_docs([h.heading for h in index.search(q, [collection_id], 40, mode=mode,
                                                         per_document=0)])
        for qid, q in queries.items()
    }  # fmt: skip


if __name__ == "__main__":
    main()
