"""Ingestion benchmark: Enclave's real pipeline against plain sentence-transformers fp32 and the
stock llama-index path, on the same files, in the same run. Prints times, rates, SciFact
nDCG@10 and the ratios. Not a test: run it by hand.

    python bench/ingest.py                 # the whole SciFact corpus (5,183 abstracts)
    python bench/ingest.py --docs 600      # a subset: every judged abstract plus fillers
    python bench/ingest.py --skip-stock    # without the llama-index baseline

SciFact abstracts are written as Markdown files of 250 abstracts each, one `# <doc id>` section
per abstract: the pipeline then parses a few files (as it would in production) while every chunk
still carries its abstract's id as its section, which retrieval quality is scored on.
"""

import argparse
import json
import math
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


def load_scifact(limit: int | None) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    corpus = {}
    for line in (SCIFACT / "corpus.jsonl").open():
        row = json.loads(line)
        corpus[row["_id"]] = f"{row['title']}. {row['text']}".strip()
    queries = {}
    for line in (SCIFACT / "queries.jsonl").open():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, set[str]] = {}
    for line in list((SCIFACT / "qrels" / "test.tsv").open())[1:]:
        qid, did, _ = line.split("\t")
        qrels.setdefault(qid, set()).add(did)
    if limit:
        judged = {d for docs in qrels.values() for d in docs}
        keep = list(judged) + [d for d in corpus if d not in judged][: max(0, limit - len(judged))]
        corpus = {d: corpus[d] for d in keep}
    return corpus, queries, qrels


def ndcg10(ranked: dict[str, list[str]], qrels: dict[str, set[str]]) -> float:
    scores = []
    for qid, relevant in qrels.items():
        docs = ranked.get(qid, [])[:10]
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        scores.append(dcg / ideal)
    return 100 * sum(scores) / len(scores)


def first_docs(doc_ids: list[str], k: int = 10) -> list[str]:
    seen: list[str] = []
    for d in doc_ids:
        if d not in seen:
            seen.append(d)
    return seen[:k]


def enclave(corpus: dict[str, str], workdir: Path, mixed: list[Path]) -> dict:
    """The real pipeline: upload, parse in the limited child, chunk, embed, write to Qdrant."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ingestion import documents, index, pipeline
    from ingestion.models import Collection, Document

    index.embedder()  # load once, outside the timings (a worker keeps it loaded)
    collection = Collection.objects.create(name=f"bench-{time.time()}")
    ids = list(corpus)
    files = []
    for start in range(0, len(ids), 250):
        body = "\n\n".join(f"# {d}\n\n{corpus[d]}" for d in ids[start : start + 250])
        files.append(SimpleUploadedFile(f"scifact-{start}.md", body.encode()))
    files += [SimpleUploadedFile(p.name, p.read_bytes()) for p in mixed]
    started = time.perf_counter()
    created = documents.upload(collection, files, None)
    for document in created:
        pipeline.ingest(document.pk)
    wall = time.perf_counter() - started
    rows = list(Document.objects.filter(collection=collection))
    assert all(d.status == "ready" for d in rows), [(d.original_name, d.error) for d in rows]
    points, _ = index.client().scroll(
        index.settings.QDRANT_COLLECTION, limit=1_000_000, with_payload=True
    )
    chunks = [p.payload for p in points if p.payload["collection_id"] == str(collection.pk)]
    return {
        "wall": wall,
        "collection": collection.pk,
        "pages": sum(d.pages for d in rows),
        "texts": [f"{c['title']}\n{c['text']}" for c in chunks],
        "sections": [c.get("section", "") for c in chunks],
    }


def embed_rate(model, texts: list[str]) -> tuple[float, "object"]:  # noqa: ANN001
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - started, vectors


def stock(corpus: dict[str, str], mixed: list[Path], queries: dict[str, str]) -> dict:
    """VectorStoreIndex.from_documents + HuggingFaceEmbedding + QdrantVectorStore, defaults."""
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
    wall = time.perf_counter() - started
    retriever = built.as_retriever(similarity_top_k=10)
    ranked = {
        qid: first_docs([n.node.ref_doc_id or "" for n in retriever.retrieve(q)])
        for qid, q in queries.items()
    }
    return {"wall": wall, "ranked": ranked, "chunks": client.count("stock").count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=0, help="SciFact subset size (0: all)")
    parser.add_argument("--skip-stock", action="store_true", help="skip the llama-index path")
    parser.add_argument("--no-mixed", action="store_true", help="SciFact only")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)
        from django.conf import settings
        from sentence_transformers import SentenceTransformer

        from ingestion import index

        corpus, queries, qrels = load_scifact(args.docs or None)
        fixtures = SHARED / "fixtures" / "documents"
        mixed = [] if args.no_mixed else [fixtures / p for p in MIXED if (fixtures / p).exists()]
        print(f"corpus: {len(corpus)} SciFact abstracts + {len(mixed)} mixed files; "
              f"{len(queries)} queries; embedder dtype {settings.EMBEDDING_DTYPE}; "
              f"{torch.get_num_threads()} threads")  # fmt: skip

        run = enclave(corpus, Path(var_dir), mixed)
        texts = run["texts"]
        tokens = sum(index.count_tokens(t) for t in texts)
        own_time, _ = embed_rate(index.embedder(), texts)
        fp32 = SentenceTransformer(index.model_path(), device="cpu", local_files_only=True)
        fp32_time, fp32_vectors = embed_rate(fp32, texts)

        # Retrieval quality: Enclave's Qdrant search vs an fp32 index of the very same chunks.
        is_scifact = [s in corpus for s in run["sections"]]
        ranked_enclave = rank_by_payload(run["collection"], queries)
        query_vectors = fp32.encode(list(queries.values()), normalize_embeddings=True)
        scores = query_vectors @ fp32_vectors[is_scifact].T
        sections = [s for s, keep in zip(run["sections"], is_scifact, strict=True) if keep]
        ranked_fp32 = {
            qid: first_docs([sections[i] for i in row.argsort()[::-1][:40]])
            for qid, row in zip(queries, scores, strict=True)
        }
        quality = {"enclave": ndcg10(ranked_enclave, qrels), "fp32": ndcg10(ranked_fp32, qrels)}

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
            f"  SciFact nDCG@10: Enclave {quality['enclave']:.2f}, "
            f"fp32 on the same chunks {quality['fp32']:.2f}"
        )
        print("ratios:")
        print(f"  pipeline wall / own embedder time: {run['wall'] / own_time:.2f} (target <= 1.15)")
        print(f"  embedder token rate vs fp32: {fp32_time / own_time:.2f}x (target >= 2)")
        print(f"  nDCG@10 difference vs fp32: {quality['enclave'] - quality['fp32']:+.2f} points")
        if not args.skip_stock:
            result = stock(corpus, mixed, queries)
            stock_ndcg = ndcg10(result["ranked"], qrels)
            print(
                f"\nstock llama-index: {result['wall']:.1f} s wall, {result['chunks']} chunks "
                f"(1024-token chunks, the model reads 256), nDCG@10 {stock_ndcg:.2f}"
            )
            print(f"  Enclave wall / stock wall: {run['wall'] / result['wall']:.2f}")
            print(f"  Enclave nDCG@10 - stock: {quality['enclave'] - stock_ndcg:+.2f} points")
        index.close()


def rank_by_payload(collection_id: int, queries: dict[str, str]) -> dict[str, list[str]]:
    """Enclave's own filtered Qdrant search, reading each hit's section from its payload."""
    from django.conf import settings
    from qdrant_client import models

    from ingestion import index

    scope = models.Filter(
        must=[
            models.FieldCondition(
                key="collection_id", match=models.MatchValue(value=str(collection_id))
            )
        ]
    )
    ranked = {}
    for qid, q in queries.items():
        result = index.client().query_points(
            settings.QDRANT_COLLECTION, query=index.embed([q])[0], query_filter=scope, limit=40,
            with_payload=["section"],
        )  # fmt: skip
        ranked[qid] = first_docs([p.payload.get("section", "") for p in result.points if p.payload])
    return ranked


if __name__ == "__main__":
    main()
