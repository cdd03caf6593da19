"""Filings benchmark: quarterly reports through the real pipeline, and document recall@5 of the
questions users ask of them. Prints how many PDFs ingested and recall@5 for what the search
returns and what the chat shows, against the stock llama-index path in the same run when it is
installed ('.[bench]', and llama-index-readers-file for its PDF reader). Not a test: run it by
hand.

    python bench/filings.py                     # 5 companies x 6 quarters, 62 questions
    python bench/filings.py --companies 2       # the first 2 companies only
    python bench/filings.py --names edgar       # files named acme-20240630.pdf, as EDGAR does
    python bench/filings.py --names accession   # files named by accession number
    python bench/filings.py --skip-stock        # without the llama-index baseline

The filings are tests/filings.py's: 30 Form 10-Q-like PDFs of five made-up companies over six
quarters (2023 and 2024, Q1-Q3), mostly the same text from quarter to quarter, each question
with the filings that answer it (any one counts). They are uploaded into one collection
(documents.upload + pipeline.ingest, the embedded profile). Recall@5 is given for
`index.search(question, [collection], RETRIEVAL_TOP_K)` (what chat.retrieve returns), for what
chat.belonging keeps of it (the sources the chat shows, after RETRIEVAL_MIN_SCORE and the
relative cut), and for Enclave's dense and sparse modes alone, as baselines of the same run. The
stock path is VectorStoreIndex.from_documents over SimpleDirectoryReader with its defaults,
retriever top 5. A document's title is its file name: with --names accession it says nothing
of company or quarter, only the text does.
"""

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ingest import setup_django

K = 5


def installed() -> bool:
    try:
        import llama_index.embeddings.huggingface  # noqa: F401
        import llama_index.readers.file  # noqa: F401  (SimpleDirectoryReader's PDF reader)
        import llama_index.vector_stores.qdrant  # noqa: F401
    except ImportError:
        return False
    return True


def renamed(name: str, number: int, style: str) -> str:
    """The name a filing is uploaded as: tests/filings.py's (acme-10q-2024-q2.pdf), EDGAR's for
    a filing's main document (acme-20240630.pdf: no word of it says the quarter), or an
    accession number (nothing of company or quarter)."""
    key, _, year, quarter = name.removesuffix(".pdf").split("-")
    if style == "edgar":
        return f"{key}-{year}{('0331', '0630', '0930')[int(quarter[1]) - 1]}.pdf"
    if style == "accession":
        return f"0000950170-{year[2:]}-{104_233 + number * 37:06d}.pdf"
    return name


def enclave(paths: list[Path], questions: list[str]) -> dict:
    """Upload and ingest through the real pipeline; search each question as the chat does.
    What was found for each question: the names of the files its hits are in."""
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from assistant import chat
    from ingestion import documents, index, pipeline
    from ingestion.models import Collection, Document

    collection = Collection.objects.create(name=f"filings-{time.time()}")
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
    started = time.perf_counter()
    for document in documents.upload(collection, files, None):
        pipeline.ingest(document.pk)
    wall = time.perf_counter() - started
    rows = list(Document.objects.filter(collection=collection))
    filing = {d.pk: d.original_name for d in rows}
    found: dict[str, list[list[str]]] = {"hybrid": [], "shown": [], "dense": [], "sparse": []}
    for question in questions:
        hits = index.search(question, [collection.pk], settings.RETRIEVAL_TOP_K)
        shown = chat.belonging([{"n": n, **asdict(h)} for n, h in enumerate(hits, start=1)])
        found["hybrid"].append([filing[h.document_id] for h in hits])
        found["shown"].append([filing[s["document_id"]] for s in shown])
        for mode in ("dense", "sparse"):
            hits = index.search(question, [collection.pk], settings.RETRIEVAL_TOP_K, mode=mode)
            found[mode].append([filing[h.document_id] for h in hits])
    return {
        "wall": wall,
        "ready": sum(d.status == "ready" for d in rows),
        "failed": [(d.original_name, d.error) for d in rows if d.status != "ready"],
        "pages": sum(d.pages for d in rows),
        "chunks": sum(d.chunks for d in rows),
        "found": found,
    }


def stock(folder: Path, questions: list[str]) -> dict:
    """VectorStoreIndex.from_documents over SimpleDirectoryReader, defaults, retriever top 5."""
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from ingestion.index import model_path

    Settings.embed_model = HuggingFaceEmbedding(model_name=model_path(), device="cpu")
    Settings.llm = None
    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="stock")
    started = time.perf_counter()
    docs = SimpleDirectoryReader(input_dir=str(folder)).load_data()
    built = VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    wall = time.perf_counter() - started
    retriever = built.as_retriever(similarity_top_k=K)
    found = [[n.node.metadata["file_name"] for n in retriever.retrieve(q)] for q in questions]
    read = {d.metadata["file_name"] for d in docs if d.text.strip()}
    return {"wall": wall, "read": len(read), "chunks": client.count("stock").count, "found": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=5, help="the first N companies (1-5)")
    parser.add_argument("--quarters", type=int, default=6, help="the first N quarters (1-6)")
    parser.add_argument(
        "--names", choices=("short", "edgar", "accession"), default="short", help="file names"
    )
    parser.add_argument("--skip-stock", action="store_true", help="skip the llama-index path")
    parser.add_argument("--misses", action="store_true", help="list the questions missed")
    args = parser.parse_args()
    with_stock = not args.skip_stock and installed()
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as var_dir:
        setup_django(var_dir)  # which puts the project on sys.path: tests/ is importable
        from tests import filings

        folder = Path(var_dir) / "filings"
        paths = filings.write_filings(
            folder, filings.COMPANIES[: args.companies], filings.QUARTERS[: args.quarters]
        )
        names = {p.name: renamed(p.name, n, args.names) for n, p in enumerate(paths)}
        for path in paths:  # the stock reader sees the names Enclave gets
            path.rename(folder / names[path.name])
        asked = filings.questions(set(names))
        questions = [q for q, _ in asked]
        answers = [a for _, a in asked]
        print(
            f"{len(paths)} filings ({args.companies} companies x {args.quarters} quarters), "
            f"{len(questions)} questions; names like {names[paths[0].name]}"
        )
        real = {upload: name for name, upload in names.items()}

        def score(found: list[list[str]]) -> float:
            return filings.recall([[real[n] for n in hits] for hits in found], answers)

        run = enclave([folder / n for n in names.values()], questions)
        recall = {mode: score(found) for mode, found in run["found"].items()}
        print(
            f"\nEnclave: {run['ready']}/{len(paths)} PDFs ready ({run['pages']} pages, "
            f"{run['chunks']} chunks, {run['wall']:.1f} s)"
        )
        for name, error in run["failed"]:
            print(f"  not ready: {name}: {error}")
        print("\n| path | document recall@5 |")
        print("|---|---|")
        labels = {
            "hybrid": "Enclave `index.search()` top 5 (hybrid)",
            "shown": "Enclave, what the chat shows (`chat.belonging`)",
            "dense": "Enclave dense only",
            "sparse": "Enclave sparse only",
        }
        for mode, label in labels.items():
            print(f"| {label} | {recall[mode]:.3f} |")
        if with_stock:
            result = stock(folder, questions)
            recall["stock"] = score(result["found"])
            print(
                f"| stock llama-index, `retriever.retrieve()` ({result['read']}/{len(paths)} PDFs "
                f"read, {result['chunks']} nodes, {result['wall']:.1f} s) | {recall['stock']:.3f} |"
            )

        def ratio(baseline: str) -> str:
            return f"{recall['hybrid'] / recall[baseline]:.2f}" if recall[baseline] else "n/a"

        print("\nratios:")
        print(f"  Enclave hybrid / dense only: {ratio('dense')}")
        if with_stock:
            print(f"  Enclave hybrid / stock llama-index: {ratio('stock')}")
        else:
            print(
                "  stock llama-index: not installed ('.[bench]' and llama-index-readers-file, "
                "its PDF reader); not compared"
            )
        print(f"  targets: every PDF ready ({run['ready']}/{len(paths)}), recall@5 >= 0.85 "
              f"(search {recall['hybrid']:.3f}, shown {recall['shown']:.3f})")  # fmt: skip
        if args.misses:
            print("\nmissed by the search (question: filings found):")
            found = [[real[n] for n in hits] for hits in run["found"]["hybrid"]]
            for question, hits, answer in zip(questions, found, answers, strict=True):
                if not answer & set(hits):
                    print(f"  {question} [{', '.join(sorted(answer))}]: {', '.join(hits)}")
        from ingestion import index

        index.close()


if __name__ == "__main__":
    main()
