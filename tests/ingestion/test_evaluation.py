"""The retrieval metrics on hand-made judgements, and evaluate_retrieval on a tiny BEIR set."""

import io
import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ingestion import evaluation, index
from ingestion.index import Chunk

RELEVANT = {"a": 1, "b": 1}


def test_ndcg_discounts_relevant_documents_by_rank() -> None:
    assert evaluation.ndcg_at(["a", "b", "x"], RELEVANT, 10) == 1.0
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert evaluation.ndcg_at(["a", "x", "b"], RELEVANT, 10) == pytest.approx(expected)
    assert evaluation.ndcg_at(["x", "y", "a"], RELEVANT, 2) == 0.0


def test_ndcg_uses_graded_relevance() -> None:
    graded = {"a": 2, "b": 1}
    assert evaluation.ndcg_at(["b", "a"], graded, 10) < evaluation.ndcg_at(["a", "b"], graded, 10)


def test_recall_counts_relevant_documents_within_the_cut() -> None:
    assert evaluation.recall_at(["a", "x", "b"], RELEVANT, 2) == 0.5
    assert evaluation.recall_at(["a", "x", "b"], RELEVANT, 3) == 1.0
    assert evaluation.recall_at(["x"], {"a": 0}, 10) == 0.0  # nothing relevant: nothing to find


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document() -> None:
    assert evaluation.mrr_at(["x", "y", "b", "a"], RELEVANT, 10) == pytest.approx(1 / 3)
    assert evaluation.mrr_at(["x", "y", "b"], RELEVANT, 2) == 0.0


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert evaluation.percentile(values, 50) == 50.0
    assert evaluation.percentile(values, 95) == 95.0
    assert evaluation.percentile([7.0], 95) == 7.0


def write_beir(root: Path) -> Path:
    corpus = [
        ("d1", "Refund policy", "Refunds are paid within 14 days of the returned item arriving."),
        ("d2", "Cafeteria", "The cafeteria serves pasta on Fridays and fish on Mondays."),
        ("d3", "Parking", "Staff park in garage B; visitors use the open lot by gate 2."),
        ("d4", "Error codes", "Error QX-7731 means the coolant pump valve is stuck."),
    ]
    queries = [
        ("q1", "How long until a refund is paid?"),
        ("q2", "What does error QX-7731 mean?"),
        ("q3", "Where do visitors park?"),
        ("q9", "A query without judgements is not evaluated."),
    ]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in corpus)
    )
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "text": t}) for i, t in queries)
    )
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq3\td3\t1\n"
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_evaluate_retrieval_prints_every_mode_and_leaves_the_app_index_alone(
    tmp_path: Path,
) -> None:
    chunks = [Chunk(chunk_no=0, page=1, text="Our own refunds take 30 days.")]
    index.replace(collection_id=1, document_id=99, sha256="a" * 64, title="Ours", chunks=chunks)
    out = io.StringIO()
    call_command("evaluate_retrieval", beir=write_beir(tmp_path / "tiny"), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "tiny: 3 queries, 4 documents"
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in lines if "|" in line
    }
    assert set(rows) >= {"hybrid", "dense", "sparse"}
    for mode in ("hybrid", "dense", "sparse"):
        ndcg, recall10, recall100, mrr, p50, p95 = (float(c.strip(" |")) for c in rows[mode])
        assert (ndcg, recall10, recall100, mrr) == (1.0, 1.0, 1.0, 1.0), mode
        assert 0 < p50 <= p95
    assert "of which embedding the query: p50" in lines[-2]
    assert "best-passage cosine" in lines[-1]
    # The evaluation ran in a Qdrant of its own: the application's points are all still there.
    assert index.count(99) == 1
    assert [h.document_id for h in index.search("refunds", [1], 5)] == [99]


def test_evaluate_retrieval_limits_queries_and_documents(tmp_path: Path) -> None:
    out = io.StringIO()
    beir = write_beir(tmp_path / "tiny")
    call_command("evaluate_retrieval", beir=beir, limit=1, modes="sparse", stdout=out)
    assert out.getvalue().splitlines()[0] == "tiny: 1 queries, 4 documents"
    assert "| sparse |" in out.getvalue() and "| dense |" not in out.getvalue()


def test_evaluate_retrieval_refuses_a_folder_that_is_not_beir(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a BEIR dataset"):
        call_command("evaluate_retrieval", beir=tmp_path)
