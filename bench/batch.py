"""Batch job throughput against the real vLLM CPU server, and accuracy on a labelled set. Not a
test.

    python bench/batch.py                 # 200 documents
    python bench/batch.py --quick         # 24 documents
    python bench/batch.py --llm-url http://127.0.0.1:8001/v1   # a server already running

The documents are short business papers made up here from tests/filings.py's companies and
quarters (nothing from ../shared is needed): quarterly results, invoices, employment contracts
and incident reports, each stating an amount and a date, so every one has a known label, amount
and date. The same extract job runs over all of them with concurrency 1 (the baseline, measured
in the same run) and with BATCH_CONCURRENCY; the report gives documents a minute, tokens a
second and the ratio. A classify job then runs at BATCH_CONCURRENCY, and both jobs' answers are
scored against the labels (with the 135M demo model, expect modest accuracy: the point is that
the pipeline measures it).
"""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from ingest import setup_django  # noqa: E402

from tests.filings import COMPANIES, QUARTERS  # noqa: E402

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
LABELS = [
    {"name": "Quarterly report", "description": "a company's results for a quarter"},
    {"name": "Invoice", "description": "a bill asking a customer to pay an amount"},
    {"name": "Employment contract", "description": "terms of a person's job and salary"},
    {"name": "Incident report", "description": "an account of an accident or outage and its cost"},
]
FIELDS = [
    {"name": "amount", "type": "number", "description": "the main amount of money, in dollars"},
    {"name": "date", "type": "date", "description": "the main date the document names"},
]


def written(day: tuple[int, int, int]) -> str:
    year, month, d = day
    return f"{MONTHS[month - 1]} {d}, {year}"


def make_documents(count: int, seed: int = 7) -> list[tuple[str, str, dict]]:
    """(file name, text, truth) for `count` documents, the four kinds in turn."""
    rng = random.Random(seed)
    people = ["Maria Lopez", "James Chen", "Aisha Khan", "Tom Becker", "Elena Rossi"]
    made = []
    for n in range(count):
        company = COMPANIES[n % len(COMPANIES)]
        quarter = QUARTERS[n % len(QUARTERS)]
        day = (quarter.year, rng.randint(1, 12), rng.randint(1, 28))
        kind = LABELS[n % 4]["name"]
        if kind == "Quarterly report":
            amount = company.revenue * 1000 + rng.randint(1, 99) * 1000
            month = {1: 3, 2: 6, 3: 9}[quarter.number]
            day = (quarter.year, month, 30 if month in (6, 9) else 31)
            text = (
                f"{company.name} quarterly results.\n{company.name}, based in {company.city}, "
                f"{company.business}. For the three months ended {written(day)}, revenue was "
                f"${amount:,}. Management expects demand from {company.customers} to continue."
            )
        elif kind == "Invoice":
            amount = rng.randint(200, 90_000)
            text = (
                f"INVOICE no. {1000 + n}\nFrom: {company.name}, {company.city}.\nBill to: "
                f"Contoso Ltd.\nServices: {company.segments[0].lower()} for the quarter.\n"
                f"Total due: ${amount:,}. Payment due by {written(day)}."
            )
        elif kind == "Employment contract":
            amount = rng.randint(40, 180) * 1000
            who = rng.choice(people)
            text = (
                f"Employment agreement.\n{company.name} employs {who} as a "
                f"{company.segments[1].lower()} manager from {written(day)}. The annual salary is "
                f"${amount:,}, paid monthly. Either party may end this contract with three "
                f"months' notice."
            )
        else:
            amount = rng.randint(1, 500) * 100
            text = (
                f"Incident report.\nOn {written(day)} an outage stopped the "
                f"{company.segments[2].lower()} line at {company.name} in {company.city} for "
                f"{rng.randint(2, 9)} hours. Repairs and lost work cost ${amount:,}. No one "
                f"was hurt; the cause was a failed power supply."
            )
        # No two alike (an upload skips duplicates), in letters: digits here confuse the model.
        text += "\nFiled under " + "".join(chr(97 + n // 26**i % 26) for i in range(3)) + "."
        truth = {"label": kind, "amount": amount, "date": "{:04d}-{:02d}-{:02d}".format(*day)}
        made.append((f"doc-{n:03d}.txt", text, truth))
    return made


def start_llm(url: str | None) -> tuple[str, object]:
    if url:
        return url, None
    from assistant import llm_server
    from tests.conftest import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = Path(os.environ["ENCLAVE_VAR_DIR"]) / "vllm.log"
    print(f"starting vLLM on port {port} (log: {log}) ...", flush=True)
    process = llm_server.start(port, log)
    llm_server.wait_healthy(url, process, timeout=600)
    return url, process


def timed_run(job, owner, concurrency: int) -> tuple[object, float]:
    from django.conf import settings

    from assistant.batch import jobs

    settings.BATCH_CONCURRENCY = concurrency
    run = jobs.start(job, owner)
    started = time.perf_counter()
    jobs.run_now(run.pk)
    run.refresh_from_db()
    return run, time.perf_counter() - started


def figures(run, seconds: float) -> dict:
    from assistant.batch import jobs

    progress = jobs.progress(run)
    return {
        "documents": progress.total,
        "done": progress.done,
        "failed": progress.failed,
        "seconds": seconds,
        "docs_per_min": 60 * progress.finished / seconds,
        "completion_tps": progress.completion_tokens / seconds,
        "total_tps": progress.tokens / seconds,
    }


def accuracy(run, truths: dict[str, dict]) -> dict[str, float]:
    scores: dict[str, list[bool]] = {}
    for result in run.results.all():
        truth = truths[result.document_title]
        for column, cell in result.cells.items():
            value = cell["value"]
            if column == "label":
                right = value == truth["label"]
            elif column == "amount":
                right = isinstance(value, int | float) and abs(value - truth["amount"]) < 0.5
                # How well the grounding check tells: wrong amounts flagged, right ones not.
                flagged = bool(cell["flags"])
                scores.setdefault("wrong flagged", []).extend([flagged] if not right else [])
                scores.setdefault("right unflagged", []).extend([not flagged] if right else [])
            else:
                right = value == truth["date"]
            scores.setdefault(column, []).append(right)
        if not result.cells:  # failed: wrong on every column
            for column in ("label",) if run.kind == "classify" else ("amount", "date"):
                scores.setdefault(column, []).append(False)
    return {c: sum(v) / len(v) for c, v in scores.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="24 documents")
    parser.add_argument("--concurrency", type=int, default=None, help="default BATCH_CONCURRENCY")
    parser.add_argument("--llm-url", default=None, help="a running server (default: start one)")
    args = parser.parse_args()
    count = 24 if args.quick else args.documents
    setup_django(tempfile.mkdtemp(prefix="enclave-bench-batch-"))
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from assistant import llm
    from assistant.batch import jobs
    from ingestion import documents, pipeline
    from ingestion.models import Collection

    concurrency = args.concurrency or settings.BATCH_CONCURRENCY
    url, process = start_llm(args.llm_url)
    settings.LLM_BASE_URL = url
    llm.connection.cache_clear()
    try:
        owner = User.objects.create(username="bench", is_superuser=True)
        collection = Collection.objects.create(name="Bench")
        made = make_documents(count)
        print(f"ingesting {count} documents ...", flush=True)
        uploads = [SimpleUploadedFile(name, text.encode()) for name, text, _ in made]
        for start in range(0, len(uploads), 50):  # an upload takes 100 files at most
            for document in documents.upload(collection, uploads[start : start + 50], owner):
                pipeline.ingest(document.pk)
        truths = {Path(name).stem: truth for name, _, truth in made}

        extract = jobs.create_job(
            owner, name="Amounts", kind="extract", collection_ids=[collection.pk],
            spec={"fields": FIELDS},
        )  # fmt: skip
        classify = jobs.create_job(
            owner, name="Kinds", kind="classify", collection_ids=[collection.pk],
            spec={"labels": LABELS},
        )  # fmt: skip
        rows = []
        for width in (1, concurrency):
            print(f"extract, concurrency {width} ...", flush=True)
            run, seconds = timed_run(extract, owner, width)
            rows.append((f"extract x{width}", figures(run, seconds), accuracy(run, truths)))
        print(f"classify, concurrency {concurrency} ...", flush=True)
        run, seconds = timed_run(classify, owner, concurrency)
        rows.append((f"classify x{concurrency}", figures(run, seconds), accuracy(run, truths)))
    finally:
        if process is not None:
            os.killpg(process.pid, 15)  # type: ignore[attr-defined]

    print(f"\n{'run':<14} {'docs':>5} {'failed':>6} {'seconds':>8} {'docs/min':>9} "
          f"{'out tok/s':>10} {'all tok/s':>10}  accuracy")  # fmt: skip
    for name, f, score in rows:
        scored = ", ".join(f"{k} {v:.0%}" for k, v in score.items())
        print(f"{name:<14} {f['documents']:>5} {f['failed']:>6} {f['seconds']:>8.1f} "
              f"{f['docs_per_min']:>9.1f} {f['completion_tps']:>10.1f} {f['total_tps']:>10.1f}  "
              f"{scored}")  # fmt: skip
    ratio = rows[1][1]["docs_per_min"] / max(rows[0][1]["docs_per_min"], 1e-9)
    print(f"\nconcurrency {concurrency} vs 1: {ratio:.2f}x documents a minute (target >= 3x)")


if __name__ == "__main__":
    main()
