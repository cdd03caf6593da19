"""bench/load.py's invariants at a small N: one web process, served exactly as deployed
(gunicorn with assistant/gunicorn_conf.py), holds every stream at once while a bulk upload
ingests, with no error and a complete query record for every answer. Timings are not checked
(a benchmark is not a timed test): the bench prints them."""

import argparse
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import load  # noqa: E402

N = 12
pytestmark = [
    pytest.mark.embedded,
    # It starts its own embedded stack (SQLite, folder broker, Edge shard) whatever the profile
    # under test: once, in the embedded pass, is enough.
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs in the embedded pass"),
]


def test_one_web_process_holds_every_stream_while_a_bulk_upload_ingests(tmp_path: Path) -> None:
    """Reliability #32 (its invariants, at a small N): concurrent employees ask while an admin
    bulk-uploads; no error, every answer's record complete, the upload ingests. The latency
    figures against the no-ingest baseline come from `python bench/load.py` (README)."""
    # Streams of 4.5 s started within 0.5 s: all N are open together unless the server queues.
    args = argparse.Namespace(
        sizes=[N], docs=6, ttft=0.5, tps=20, tokens=80, ramp=0.5, threads=0, time_limit=120
    )
    [round_] = load.run(args, tmp_path)
    assert round_["errors"] == 0, round_["error_sample"]
    assert round_["complete"] == N  # answered, with its answer, first_token_ms and latency_ms
    assert round_["held"] == N  # the stand-in saw all N streams open at one moment
    # The upload went through the upload form while the questions were answered.
    assert sum(round_["documents"].values()) == len(load.POLICIES) + 6
