"""Which retrieved passages to show: RETRIEVAL_RELATIVE_CUT measured, not guessed. Not a test.

    python bench/sources.py                 # 100 SciFact queries, ~2,100 abstracts
    python bench/sources.py --queries 300

Two collections share one index, as for a user who can read both: SciFact abstracts and the
demo handbook (through the real pipeline). SciFact's test queries and questions about the
handbook are each searched in both (top RETRIEVAL_TOP_K, as the chat does). A hit from the other
collection is off topic; a SciFact hit on a judged-relevant abstract, or a handbook hit on the
document that answers the question, is relevant. For each cut (a passage is dropped when its
cosine similarity is more than the cut below the best passage's) the bench prints the share of
relevant passages kept and the off-topic passages shown per question, against no cut at all (the
baseline, measured in the same run).
"""

import argparse
import hashlib
import tempfile

from ingest import ROOT, SCIFACT, setup_django

HANDBOOK = ROOT / "ingestion" / "demo" / "handbook"
# (question, the handbook file that answers it)
QUESTIONS = [
    ("How many days of annual leave do employees get?", "leave-policy.md"),
    ("Can unused leave days be carried over to next year?", "leave-policy.md"),
    ("When do I need a doctor's note for sick leave?", "leave-policy.md"),
    ("How long is parental leave for the second parent?", "leave-policy.md"),
    ("What is the daily meal allowance abroad?", "expenses.html"),
    ("How much is reimbursed for a hotel night in a capital city?", "expenses.html"),
    ("Within how many days must expense claims be submitted?", "expenses.html"),
    ("How long must passwords be?", "security-basics.txt"),
    ("Who do I call when my laptop is lost?", "security-basics.txt"),
    (
        "How quickly must a personal data breach be reported to the authority?",
        "security-basics.txt",
    ),
    ("Can I store patient data on my own USB stick?", "security-basics.txt"),
    ("How many days a week can I work from home?", "remote-work.pdf"),
    ("Can I work from another country for a month?", "remote-work.pdf"),
    ("What happens in my first week as a new employee?", "onboarding.docx"),
]
CUTS = [0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3]
KEEP = 0.975  # the share of relevant passages a cut must keep to be chosen
SCIFACT_OFFSET = 1_000_000  # SciFact's document ids, clear of the handbook's rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100, help="SciFact test queries")
    args = parser.parse_args()
    if not SCIFACT.exists():
        raise SystemExit(f"skipped: {SCIFACT} is absent (../shared holds the evaluation data)")
    setup_django(tempfile.mkdtemp(prefix="enclave-bench-"))
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ingestion import documents, evaluation, index, pipeline
    from ingestion.models import Collection, Document
    from ingestion.parsing import Page

    science = Collection.objects.create(name="SciFact")
    handbook = Collection.objects.create(name="Handbook")
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(HANDBOOK.iterdir())]
    for document in documents.upload(handbook, files, None):
        pipeline.ingest(document.pk)
    names = dict(Document.objects.values_list("pk", "original_name"))

    dataset = evaluation.load_beir(SCIFACT, limit=args.queries)
    doc_ids = list(dataset.corpus)
    for start in range(0, len(doc_ids), 100):
        sources = []
        for number in range(start, min(start + 100, len(doc_ids))):
            title, text = dataset.corpus[doc_ids[number]]
            sha256 = hashlib.sha256(text.encode()).hexdigest()
            chunks = pipeline.chunk([Page(1, text)])
            sources.append(index.Source(science.pk, SCIFACT_OFFSET + number, sha256, title, chunks))
        index.put(sources)
    print(f"indexed {len(doc_ids)} abstracts and {len(names)} handbook documents")

    # Each searched hit as (score, relevant, off topic), per question.
    searches: list[list[tuple[float, bool, bool]]] = []
    scope = [science.pk, handbook.pk]
    for query_id, text in dataset.queries.items():
        relevant = {doc for doc, grade in dataset.qrels[query_id].items() if grade > 0}
        hits = index.search(text, scope, settings.RETRIEVAL_TOP_K)
        searches.append(
            [
                (
                    h.score,
                    h.document_id >= SCIFACT_OFFSET
                    and doc_ids[h.document_id - SCIFACT_OFFSET] in relevant,
                    h.collection_id != science.pk,
                )
                for h in hits
            ]  # fmt: skip
        )
    for text, answer in QUESTIONS:
        hits = index.search(text, scope, settings.RETRIEVAL_TOP_K)
        searches.append(
            [
                (
                    h.score,
                    names.get(h.document_id) == answer and h.collection_id == handbook.pk,
                    h.collection_id != handbook.pk,
                )
                for h in hits
            ]  # fmt: skip
        )
    report(searches, len(dataset.queries), settings.RETRIEVAL_RELATIVE_CUT)


def report(searches: list[list[tuple[float, bool, bool]]], scifact: int, current: float) -> None:
    def shown(cut: float) -> tuple[float, float, float]:
        relevant = kept = off_topic = 0
        for hits in searches:
            best = max((score for score, _, _ in hits), default=0.0)
            for score, is_relevant, is_off_topic in hits:
                show = score >= best - cut
                relevant += is_relevant
                kept += is_relevant and show
                off_topic += is_off_topic and show
        return kept / max(relevant, 1), off_topic / len(searches), relevant

    base_kept, base_off, relevant = shown(float("inf"))
    print(f"\n{scifact} SciFact queries + {len(QUESTIONS)} handbook questions, "
          f"{relevant:.0f} relevant passages retrieved")  # fmt: skip
    print("\n| cut | relevant kept | off-topic shown / question | vs no cut |")
    print("|---|---|---|---|")
    print(f"| none (baseline) | {base_kept:.1%} | {base_off:.2f} | 1.00 |")
    chosen = None
    for cut in CUTS:
        kept, off, _ = shown(cut)
        mark = " (RETRIEVAL_RELATIVE_CUT)" if cut == current else ""
        print(
            f"| {cut:g}{mark} | {kept:.1%} | {off:.2f} | {off / base_off if base_off else 0:.2f} |"
        )
        if chosen is None and kept >= KEEP:
            chosen = cut
    print(f"\nthe smallest cut keeping {KEEP:.1%} of relevant passages: {chosen}")


if __name__ == "__main__":
    main()
