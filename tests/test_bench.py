"""bench/ingest.py keeps running: a tiny run of each mode. Its timings are not checked (a
benchmark is not a timed test); that it runs the real pipeline and scores it is."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (SHARED / "eval" / "scifact").exists(),
    reason="../shared/eval/scifact is absent (it exists only in the team's checkouts and CI)",
)


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "bench/ingest.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


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
