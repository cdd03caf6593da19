"""bench/ingest.py and bench/search.py keep running: a tiny run of each mode. Their timings are
not checked (a benchmark is not a timed test); that they run the real pipeline and score it is."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.factories import make_pdf
from tests.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (SHARED / "eval" / "scifact").exists(),
    reason="../shared/eval/scifact is absent (it exists only in the team's checkouts and CI)",
)


def bench(*args: str, script: str = "bench/ingest.py") -> str:
    done = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing too
        return False


def test_the_ingestion_benchmark_prints_its_ratios_and_quality() -> None:
    out = bench("--docs", "40", "--queries", "8", "--skip-stock", "--no-mixed")
    assert "corpus: 40 SciFact abstracts + 0 mixed files; 8 queries" in out
    assert re.search(r"pipeline wall / own embedder time: \d+\.\d\d", out)
    assert re.search(r"embedder token rate vs fp32: \d+\.\d\dx", out)
    assert "rate at 1,000 chunks: not reached" in out
    # Eight queries whose abstracts are among 40: retrieval finds them.
    hybrid = float(re.search(r"Enclave hybrid (\d+\.\d\d)", out).group(1))  # type: ignore[union-attr]
    assert hybrid >= 60


def test_the_long_pdf_benchmark_reports_peak_memory() -> None:
    out = bench("--big-pdf", "4")
    assert "4-page PDF" in out and ": ready, 4 pages" in out
    assert re.search(r"worker peak RSS \d+ MiB", out)


def test_the_search_benchmark_prints_latency_quality_and_the_ratio_to_stock() -> None:
    # The stock baseline is an optional extra ('.[bench]'): compared when it is installed.
    stock = installed("llama_index.embeddings.huggingface")
    args = ("--docs", "40", "--queries", "8") + (() if stock else ("--skip-stock",))
    out = bench(*args, script="bench/search.py")
    assert "corpus: 40 SciFact abstracts" in out and "8 queries, top 10" in out
    for mode in ("hybrid", "dense", "sparse"):
        assert re.search(
            rf"\| Enclave {mode}, `index.search\(\)` \| [\d.]+ \| [\d.]+ \| \d\.\d{{3}}", out
        )
    assert re.search(r"Enclave hybrid p95: [\d.]+ ms", out)
    hybrid = float(re.search(r"Enclave hybrid nDCG@10: (\d\.\d{3})", out).group(1))  # type: ignore[union-attr]
    assert hybrid >= 0.6
    if stock:
        assert re.search(r"\| stock llama-index dense, `retriever.retrieve\(\)` \(40 nodes", out)
        assert re.search(r"stock p95 / Enclave hybrid p95: [\d.]+x", out)


def test_the_pdf_benchmark_compares_pdfium_with_pypdf(tmp_path: Path) -> None:
    for n in (1, 2):
        (tmp_path / f"{n}.pdf").write_bytes(make_pdf([f"File {n}, first page.", "Second page."]))
    out = bench(str(tmp_path), script="bench/pdf.py")
    assert out.startswith("2 PDFs;")
    assert re.search(r"\| pypdf [\d.]+ \(previous\) \| 2/2 \| 4 \| 54 \| [\d.]+ \| [\d.]+ \|", out)
    assert re.search(r"\| PDFium, pypdfium2 [\d.]+ \(now\) \| 2/2 \| 4 \| 54 \|", out)
    assert re.search(r"PDFium / pypdf pages/s: [\d.]+x", out)
    assert "PDFium / pypdf characters: 1.000" in out


@pytest.mark.skipif(not (SHARED / "fixtures" / "long-pdfs").exists(), reason="no long PDFs")
def test_the_idf_experiment_compares_global_and_searched_term_statistics() -> None:
    out = bench(
        "--idf", "--docs", "40", "--queries", "8", "--tenants", "1", script="bench/search.py"
    )
    assert "40 abstracts" in out and "in 8 collections" in out
    assert "other tenants: nih-clinical-trial-protocols (1 PDFs" in out
    for mode in ("sparse", "hybrid"):
        for label in (
            "global, SciFact alone in the index",
            "global, with the other tenants",
            "searched collections",
        ):
            quality = r"\d\.\d{3} \| \d\.\d{3}"
            assert re.search(rf"\| {mode} \| {label} \| {quality} \| [\d.]+ \| [\d.]+ \|", out)
        assert re.search(rf"{mode}: searched - global nDCG@10 [+-]\d\.\d{{3}}", out)


def test_the_claim_check_benchmark_prints_catch_and_false_flag_rates() -> None:
    out = bench("--passages", "5", script="bench/claims.py")
    assert "handbook answers" in out and "SciFact answers from 5 abstracts" in out
    row = r"\| all \| \d+ planted, \d+ correct \| {} \| ([\d.]+)% \(\d+/\d+\) \| ([\d.]+)% \("
    new = re.search(row.format(re.escape("values + support (new)")), out)
    old = re.search(row.format(re.escape("support only (old)")), out)
    assert new is not None and old is not None, out
    assert float(new.group(1)) >= 95 and float(new.group(2)) <= 5
    assert float(old.group(1)) < float(new.group(1))  # today's rule, in the same run
    assert re.search(r"time per answer, median: new [\d.]+ ms, old [\d.]+ ms", out)


def test_the_sources_benchmark_measures_each_cut_against_no_cut() -> None:
    out = bench("--queries", "5", script="bench/sources.py")
    assert "| none (baseline) | 100.0% |" in out
    rows = re.findall(r"^\| (0\.\d+)[^|]* \| ([\d.]+)% \| ([\d.]+) \| ([\d.]+) \|$", out, re.M)
    assert [float(cut) for cut, *_ in rows] == [0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3]
    kept = [float(k) for _, k, _, _ in rows]
    assert kept == sorted(kept)  # a wider cut never keeps fewer relevant passages
    assert "the smallest cut keeping 97.5% of relevant passages:" in out


def test_the_filings_benchmark_reports_ready_pdfs_and_recall() -> None:
    out = bench("--companies", "1", "--quarters", "2", "--skip-stock", script="bench/filings.py")
    assert out.startswith("2 filings (1 companies x 2 quarters), 3 questions;")
    assert "Enclave: 2/2 PDFs ready" in out
    for path in ("Enclave `index.search()` top 5 (hybrid)", "Enclave dense only"):
        assert re.search(rf"\| {re.escape(path)} \| [01]\.\d{{3}} \|", out)
    assert re.search(r"Enclave hybrid / dense only: \d+\.\d\d", out)
    assert re.search(r"every PDF ready \(2/2\), recall@5 >= 0.85 \(search [01]\.\d{3}, shown", out)


def test_the_streaming_benchmark_compares_the_token_reader_with_the_openai_client() -> None:
    out = bench("--rounds", "1", "--tokens", "200", script="bench/stream.py")
    assert "OpenAI client (baseline)" in out
    assert re.search(r"ratio baseline / ours:\s+\d+\.\d+×", out), out


def answer_any_job(body: dict) -> str:
    """A stand-in model for bench/batch.py: a reply that follows the request's schema, the
    document's first dollar amount as the amount."""
    properties = body["response_format"]["json_schema"]["schema"]["properties"]
    if "label" in properties:
        return json.dumps({"label": properties["label"]["enum"][0], "sources": [1]})
    amount = re.search(r"\$([\d,]+)", body["messages"][-1]["content"])
    value = int(amount.group(1).replace(",", "")) if amount else None
    cell = {"value": value, "sources": [1]}
    return json.dumps({"amount": cell, "date": {"value": None, "sources": []}})


def test_the_batch_benchmark_prints_its_table_and_the_concurrency_ratio() -> None:
    fake = FakeLLM()
    fake.reply, fake.delay = answer_any_job, 0.1
    try:
        args = ("--documents", "8", "--concurrency", "4", "--llm-url", fake.url)
        out = bench(*args, script="bench/batch.py")
    finally:
        fake.close()
    assert re.search(
        r"^run +docs +failed +seconds +docs/min +out tok/s +all tok/s +accuracy$", out, re.M
    )
    number = r" +[\d.]+"
    # The stand-in reads every amount right and no date; it gives every document the first label.
    for run, scored in (
        ("extract x1", "amount 100%, date 0%"),
        ("extract x4", "amount 100%, date 0%"),
        ("classify x4", "label 25%"),
    ):
        assert re.search(rf"^{run} +8 +0{number * 4}  .*{scored}$", out, re.M), out
    assert re.search(
        r"^concurrency 4 vs 1: \d+\.\d\dx documents a minute \(target >= 3x\)$", out, re.M
    )
    assert fake.max_active >= 2  # the second extract run had documents in flight at once
