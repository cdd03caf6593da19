"""manage.py evaluate_retrieval --beir DIR: retrieval quality and latency, per search mode.

The dataset is ingested into a temporary Qdrant collection (in a temporary local-mode folder
unless QDRANT_URL names a server), never into the application's own collection.
"""

import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from ingestion import evaluation, index

COLLECTION_ID = 1


class Command(BaseCommand):
    help = "Ingest a BEIR-format dataset and print nDCG@10, Recall@10/100, MRR@10 and latency."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--beir", required=True, type=Path, help="BEIR dataset folder")
        parser.add_argument("--split", default="test", help="qrels/<split>.tsv (default: test)")
        parser.add_argument(
            "--limit", type=int, help="first N queries, their documents and 20×N distractors"
        )
        parser.add_argument(
            "--qdrant-path",
            type=Path,
            help="local-mode folder to keep the evaluation index in and reuse on the next run",
        )
        parser.add_argument("--modes", default=",".join(index.MODES), help="comma-separated")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["beir"]
        if not (directory / "corpus.jsonl").exists():
            raise CommandError(f"{directory} holds no corpus.jsonl: not a BEIR dataset")
        modes = options["modes"].split(",")
        if set(modes) - set(index.MODES):
            raise CommandError(f"--modes takes {', '.join(index.MODES)}")
        dataset = evaluation.load_beir(directory, options["split"], options["limit"])
        self.stdout.write(
            f"{directory.name}: {len(dataset.queries)} queries, {len(dataset.corpus)} documents"
        )
        keep = options["qdrant_path"]
        with tempfile.TemporaryDirectory() as scratch:
            overrides: dict[str, Any] = {"QDRANT_COLLECTION": f"enclave_eval_{uuid.uuid4().hex}"}
            if keep:
                overrides["QDRANT_COLLECTION"] = f"enclave_eval_{len(dataset.corpus)}"
            if not settings.QDRANT_URL:
                overrides["QDRANT_PATH"] = str(keep or scratch)
            index.close()  # the next client() opens the evaluation's Qdrant
            try:
                with override_settings(**overrides):
                    self.run(dataset, modes, reuse=bool(keep))
            finally:
                index.close()

    def run(self, dataset: evaluation.Dataset, modes: list[str], reuse: bool) -> None:
        name = settings.QDRANT_COLLECTION
        if reuse and index.client().collection_exists(name):
            doc_ids = list(dataset.corpus)
            self.stdout.write(f"reusing the index in {settings.QDRANT_PATH}")
        else:
            doc_ids = evaluation.ingest(dataset, COLLECTION_ID, self.stdout.write)
        try:
            rows = {m: evaluation.evaluate(dataset, doc_ids, COLLECTION_ID, m) for m in modes}
            embedding = evaluation.embedding_latency(dataset)
        finally:
            if not reuse:
                index.client().delete_collection(name)
        columns = ["nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"]
        self.stdout.write("| mode | " + " | ".join(columns) + " |")
        self.stdout.write("|---" * (len(columns) + 1) + "|")
        for mode, scores in rows.items():
            row = scores.row()
            cells = [f"{row[c]:.1f}" if c.endswith("ms") else f"{row[c]:.3f}" for c in columns]
            self.stdout.write(f"| {mode} | " + " | ".join(cells) + " |")
        self.stdout.write(
            f"of which embedding the query: p50 {evaluation.percentile(embedding, 50):.1f} ms, "
            f"p95 {evaluation.percentile(embedding, 95):.1f} ms"
        )
        if "hybrid" in rows:
            top = rows["hybrid"].top_score
            refused = sum(s < settings.RETRIEVAL_MIN_SCORE for s in top) / len(top)
            p = [f"p{q}={evaluation.percentile(top, q):.3f}" for q in (1, 5, 50)]
            self.stdout.write(
                f"best-passage cosine (hybrid): {' '.join(p)}; at RETRIEVAL_MIN_SCORE="
                f"{settings.RETRIEVAL_MIN_SCORE} {refused:.1%} of these queries are refused"
            )
