"""manage.py evaluate_retrieval --beir DIR: retrieval quality and latency, per search mode.

The dataset is ingested into an index of its own (a temporary Edge shard, or a temporary
collection on the Qdrant server QDRANT_URL names), never into the application's own index: it
runs next to a running server.
"""

import shutil
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
            "--index-path",
            type=Path,
            help="folder to keep the evaluation's Edge shard in and reuse on the next run",
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
        keep = options["index_path"]
        with tempfile.TemporaryDirectory() as scratch:
            overrides: dict[str, Any] = {"QDRANT_COLLECTION": f"enclave_eval_{uuid.uuid4().hex}"}
            if keep:
                overrides["QDRANT_COLLECTION"] = f"enclave_eval_{len(dataset.corpus)}"
            if not settings.QDRANT_URL:
                overrides["INDEX_PATH"] = Path(keep or scratch)
            try:
                with override_settings(**overrides):
                    self.run(dataset, modes, reuse=bool(keep))
            finally:
                index.close()

    def run(self, dataset: evaluation.Dataset, modes: list[str], reuse: bool) -> None:
        if reuse and index.engine().count():
            doc_ids = list(dataset.corpus)
            self.stdout.write(f"reusing the index in {settings.INDEX_PATH}")
        else:
            doc_ids = evaluation.ingest(dataset, COLLECTION_ID, self.stdout.write)
        try:
            rows = {m: evaluation.evaluate(dataset, doc_ids, COLLECTION_ID, m) for m in modes}
            embedding = evaluation.embedding_latency(dataset)
        finally:
            if not reuse:
                drop()
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


def drop() -> None:
    """Remove the evaluation's own index (an Edge shard folder, or a server collection)."""
    if settings.QDRANT_URL:
        from ingestion.index.server import ServerEngine

        engine = index.engine()
        assert isinstance(engine, ServerEngine)
        engine.client.delete_collection(settings.QDRANT_COLLECTION)
    index.close()
    shutil.rmtree(Path(settings.INDEX_PATH) / settings.QDRANT_COLLECTION, ignore_errors=True)
