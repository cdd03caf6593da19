"""What a worker does with a run: claim it under a lease, then keep BATCH_CONCURRENCY documents
in flight against vLLM (a thread pool inside the one task, so requests overlap whatever the
worker's own concurrency: the embedded profile's worker has two threads). Each document: check
the owner may still read it, read its passages, ask for the schema's JSON, check the answer,
store it with its audit record and usage. Pause and cancel are read between documents. Which
model reads them is decided again at each slice, over the job's collections as they are then: a
restricted collection keeps every document of the run on on-premises models."""

import json
import logging
import math
import os
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import date, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistant import audit, grounding, llm
from assistant.audit.models import QueryRecord
from assistant.batch import prompts, schema
from assistant.batch.models import BatchResult, BatchRun
from assistant.endpoints import Decision
from assistant.usage import over_budget, record_usage
from ingestion import index, lexical
from ingestion.models import Document

log = logging.getLogger(__name__)
Run, Result, Outcome = BatchRun.Status, BatchResult.Status, QueryRecord.Outcome
# Consecutive documents the model server failed on before the run stops (failed, resumable):
# a server that is down should not burn through every document's attempt.
MAX_UNAVAILABLE = 5
STOPPED = "The model server failed on several documents in a row; resume when it is back."
OVER_BUDGET = "A group of the job's owner has spent its monthly token budget; resume later."
MAX_ATTEMPTS = 3  # per document, when the model server fails (down, timeout, HTTP 5xx)
RENEW_EVERY = 5.0  # seconds between lease renewals (and status reads) while documents run


class Lease:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def held(self) -> QuerySet[BatchRun]:
        return BatchRun.objects.filter(pk=self.run_id, lease_owner=self.owner)

    def renew(self) -> bool:
        until = timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS)
        return bool(self.held().update(lease_until=until))


def claim(lease: Lease) -> float | None:
    """Take the run: None when taken (or nothing to do), else seconds until another worker's
    live lease runs out. Documents a dead worker had in hand go back to pending."""
    now = timezone.now()
    free = Q(lease_until=None) | Q(lease_until__lt=now)
    runnable = BatchRun.objects.filter(pk=lease.run_id, status__in=[Run.QUEUED, Run.RUNNING])
    taken = runnable.filter(free).update(
        status=Run.RUNNING,
        lease_owner=lease.owner,
        lease_until=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS),
        started_at=Coalesce(F("started_at"), now),
    )
    if taken:
        BatchResult.objects.filter(run_id=lease.run_id, status=Result.RUNNING).update(
            status=Result.PENDING, started_at=None
        )
        return None
    held = runnable.values_list("lease_until", flat=True).first()
    return max((held - now).total_seconds(), 1.0) if held else None


def process(run_id: int) -> float | None:
    """Work on the run until it is finished, paused or cancelled, or its time slice is over.
    Returns None when there is nothing more to do here, else seconds after which to call again
    (0: the slice ended with documents left; more: another worker holds the run)."""
    lease = Lease(run_id)
    wait_for = claim(lease)
    if not lease.held().exists():
        return wait_for
    run = BatchRun.objects.select_related("job__owner").get(pk=run_id)
    decision = decide(run)
    pending = list(
        run.results.filter(status=Result.PENDING)
        .order_by("position", "id")
        .values_list("pk", flat=True)
    )
    deadline = time.monotonic() + settings.BATCH_SLICE_SECONDS
    unavailable = 0  # consecutive documents the model server failed on
    spent = False  # a group of the owner's is over its monthly budget
    in_flight: set[Future[str]] = set()
    with ThreadPoolExecutor(run.params.get("concurrency", 1), thread_name_prefix="batch") as pool:
        while True:
            status = BatchRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
            spent = spent or bool(pending and over_budget(run.job.owner))
            go = (
                lease.renew()
                and status == Run.RUNNING
                and unavailable < MAX_UNAVAILABLE
                and not spent
                and time.monotonic() < deadline
            )
            while go and pending and len(in_flight) < run.params.get("concurrency", 1):
                in_flight.add(pool.submit(in_thread, run, decision, pending.pop(0)))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, timeout=RENEW_EVERY, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                unavailable = unavailable + 1 if outcome == "unavailable" else 0
    stopped = STOPPED if unavailable >= MAX_UNAVAILABLE else OVER_BUDGET if spent else ""
    return finish(run_id, lease, stopped=stopped)


def decide(run: BatchRun) -> Decision:
    """The model for this slice's documents, by the policy as it is now; the run shows it."""
    from assistant.batch.jobs import decision

    read = run.results.values_list("collection_id", flat=True).distinct()
    decided = decision(run.job, run.params.get("picked", ""), read)
    now = {"endpoint": decided.endpoint.location, "policy": decided.policy}
    if run.model != decided.endpoint.name or any(run.params.get(k) != v for k, v in now.items()):
        run.model, run.params = decided.endpoint.name, {**run.params, **now}
        BatchRun.objects.filter(pk=run.pk).update(model=run.model, params=run.params)
    return decided


def finish(run_id: int, lease: Lease, *, stopped: str) -> float | None:
    """Release the run; settle its status once no document is left."""
    with transaction.atomic():
        run = BatchRun.objects.select_for_update().get(pk=run_id)
        if run.lease_owner != lease.owner:
            return None  # the lease ran out and another worker has it
        left = run.results.filter(status__in=[Result.PENDING, Result.RUNNING]).exists()
        again: float | None = None
        if run.status == Run.RUNNING and stopped:
            run.status = Run.FAILED
            run.error = stopped
        elif run.status == Run.RUNNING and not left:
            counts = Counter(run.results.values_list("status", flat=True))
            all_failed = counts[Result.FAILED] and not counts[Result.DONE]
            run.status = Run.FAILED if all_failed else Run.DONE
            run.error = "No document could be processed." if all_failed else ""
            run.finished_at = timezone.now()
            audit.record(
                audit.Action.BATCH_RUN_FINISHED,
                run.job.owner,
                run,
                label=str(run),
                detail={"job": run.job_id, "status": run.status, "results": dict(counts)},
            )
        elif run.status in (Run.RUNNING, Run.QUEUED):
            again = 0.0  # the slice is over, or it was resumed while this worker finished
        run.lease_owner, run.lease_until = "", None
        run.save(update_fields=["status", "error", "finished_at", "lease_owner", "lease_until"])
    return again


def in_thread(run: BatchRun, decision: Decision, result_id: int) -> str:
    try:
        return process_document(run, decision, result_id)
    except Exception:
        log.exception("batch run %s: document result %s failed", run.pk, result_id)
        BatchResult.objects.filter(pk=result_id, status=Result.RUNNING).update(
            status=Result.FAILED,
            error="An internal error; see the worker log.",
            finished_at=timezone.now(),
        )
        return "failed"
    finally:
        connection.close()  # this pool thread's own connection; the pool ends with the slice


# --- one document ---------------------------------------------------------------------------


def process_document(run: BatchRun, decision: Decision, result_id: int) -> str:
    """One document, start to end: "done", "failed", "skipped", "unavailable" or "gone"."""
    from assistant.batch.jobs import batch_collections

    close_old_connections()
    started = timezone.now()
    if not BatchResult.objects.filter(pk=result_id, status=Result.PENDING).update(
        status=Result.RUNNING, started_at=started, attempts=F("attempts") + 1
    ):
        return "gone"  # cancelled, or taken by another worker
    result = BatchResult.objects.get(pk=result_id)
    owner = run.job.owner
    document = Document.objects.filter(pk=result.document_id or 0).first()
    # At run time, each document is read only if its owner may read it now.
    if not batch_collections(owner).filter(pk=result.collection_id).exists():
        return skip(result, "The job's owner can no longer read this collection.")
    if document is None or document.status != Document.Status.READY:
        return skip(result, "The document was deleted or is not ready.")
    passages, by_query = read_passages(document, run.kind, run.spec)
    messages = prompts.build_messages(run.kind, run.spec, run.instruction, document.title, passages)
    usage = llm.Usage()
    endpoint = decision.endpoint
    record = QueryRecord(
        user_ref=owner.pk,
        username=owner.get_username(),
        group_keys=QueryRecord.group_keys_of(owner.groups.values_list("name", flat=True)),
        created_at=started,
        scope=[{"id": document.collection_id, "name": document.collection.name}],
        collection_keys=audit.keys([document.collection_id]),
        document_keys=audit.keys([document.pk]),
        retrieved=[
            {**p, "document_sha256": document.sha256, "title": document.title} for p in passages
        ],
        question=messages[0]["content"],
        prompt=messages,
        prompt_version=prompts.PROMPT_VERSION,
        model=endpoint.model,
        endpoint=endpoint.location,
        policy=decision.policy,
        params={
            # The record has its own fields for these.
            **{k: v for k, v in run.params.items() if k not in ("endpoint", "policy")},
            "batch_job": run.job_id,
            "batch_run": run.pk,
            "schema": run.schema,
        },
        channel=QueryRecord.Channel.BATCH,
    )
    clock = time.monotonic()
    outcome, error, output, text = "done", "", None, ""
    try:
        text = llm.complete_json(
            messages, run.schema, f"batch_{run.kind}", run.params["max_tokens"], usage, endpoint
        )
        output, error = parse(text, run.schema, usage.finish_reason)
    except llm.LLMUnavailable as exc:
        # A request the server refused (4xx: too long...) fails; one it failed on is retried.
        refused = 400 <= int(str(exc.values.get("status", 0))) < 500
        outcome, error = "failed" if refused else "unavailable", str(exc)
    if error and outcome == "done":
        outcome = "failed"
    cells = make_cells(run.kind, run.spec, output, passages, by_query) if output is not None else {}
    result.document_sha256 = document.sha256
    result.status = Result.DONE if outcome == "done" else Result.FAILED
    if outcome == "unavailable" and result.attempts < MAX_ATTEMPTS:
        result.status = Result.PENDING  # the next slice, or a resume, tries it again
    result.output, result.cells, result.passages, result.error = output, cells, passages, error
    result.prompt_tokens, result.completion_tokens = usage.prompt_tokens, usage.completion_tokens
    result.latency_ms = int((time.monotonic() - clock) * 1000)
    result.finished_at = timezone.now()
    # The result and its audit record are written together, or neither is.
    with transaction.atomic():
        audit.finalize(
            record,
            outcome=Outcome.ANSWERED if outcome == "done" else Outcome.ERROR,
            answer=text,
            error=error,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=result.latency_ms,
            grounding={"flags": {k: c["flags"] for k, c in cells.items() if c["flags"]}},
        )
        record_usage(record, owner, [document.collection], endpoint)
        result.record = record
        result.save()
    return outcome


def skip(result: BatchResult, reason: str) -> str:
    result.status, result.error, result.finished_at = Result.SKIPPED, reason, timezone.now()
    result.save(update_fields=["status", "error", "finished_at"])
    return "skipped"


def parse(text: str, expected: dict, finish_reason: str | None) -> tuple[dict | None, str]:
    """The answer as JSON that follows the schema, or why not. Decoding was constrained, but a
    cut-off answer (max_tokens) or a server without structured outputs still gets here."""
    try:
        output = json.loads(text)
    except ValueError:
        cut = finish_reason == "length"
        return None, "The answer was cut off at max_tokens." if cut else "The answer is not JSON."
    problems = schema.errors(expected, output)
    if problems:
        return None, "The answer does not follow the schema: " + "; ".join(problems[:5])
    return output, ""


# --- passages -------------------------------------------------------------------------------


def document_chunks(document: Document) -> list[dict]:
    """Every chunk of the document's current version, by id (ids derive from the document, its
    version and the chunk number), with its dense vector: a lookup, no search of anyone else's
    documents."""
    ids = [index.point_id(document.pk, document.sha256, n) for n in range(document.chunks)]
    found = []
    for start in range(0, len(ids), 256):
        found += index.engine().retrieve(ids[start : start + 256], dense=True)
    chunks = [
        {"chunk_no": int(p.payload["chunk_no"]), "page": int(p.payload["page"]),
         "text": p.payload["text"], "dense": p.dense}
        for p in found
        if int(p.payload.get("document_id", -1)) == document.pk
    ]  # fmt: skip
    return sorted(chunks, key=lambda c: c["chunk_no"])


@lru_cache(maxsize=32)
def embedded(queries: tuple[str, ...]) -> list[list[float]]:
    """A job's retrieval queries are the same for each of its documents: embedded once."""
    return index.embed(list(queries)) if queries else []


def by_meaning(vector: list[float], chunks: list[dict]) -> list[int]:
    """Indexes of the chunks, most similar in meaning to the query first (cosine: the vectors
    are normalised); a field no word of the document matches still finds its passage."""
    import numpy as np

    kept = [i for i, c in enumerate(chunks) if c.get("dense")]
    if not kept:
        return []
    similarity = np.array([chunks[i]["dense"] for i in kept]) @ np.array(vector)
    return [kept[j] for j in np.argsort(-similarity, kind="stable")]


def fused(lexical_order: list[int], dense_order: list[int]) -> list[int]:
    """Both orders in one, by the index's own weighted reciprocal-rank fusion (RETRIEVAL_*)."""
    k = settings.RETRIEVAL_RRF_K
    weights = (settings.RETRIEVAL_SPARSE_WEIGHT, settings.RETRIEVAL_DENSE_WEIGHT)
    score: dict[int, float] = {}
    for weight, order in zip(weights, (lexical_order, dense_order), strict=True):
        for position, i in enumerate(order):
            score[i] = score.get(i, 0.0) + weight / (k + position + 1)
    return sorted(score, key=lambda i: (-score[i], i))


def rank(query: str, chunks: list[dict], terms: list[list[str]]) -> list[int]:
    """Indexes of the chunks that share terms with the query, best first: BM25 within this one
    document (the same stems and weights as the index's lexical side)."""
    wanted = set(lexical.terms(query))
    if not wanted:
        return []
    df = Counter(t for words in terms for t in set(words) & wanted)
    n, k1, b = len(chunks), settings.BM25_K1, settings.BM25_B
    average = sum(map(len, terms)) / max(n, 1) or 1
    scores = []
    for i, words in enumerate(terms):
        counts = Counter(w for w in words if w in wanted)
        norm = k1 * (1 - b + b * len(words) / average)
        score = sum(
            math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * c * (k1 + 1) / (c + norm)
            for t, c in counts.items()
        )
        if score > 0:
            scores.append((score, i))
    return [i for _, i in sorted(scores, key=lambda s: (-s[0], s[1]))]


def read_passages(document: Document, kind: str, spec: dict) -> tuple[list[dict], list[list[int]]]:
    """The passages the prompt holds, numbered from 1 (at most BATCH_PASSAGES), and for each
    retrieval query (label, field) the numbers of those found for it, by words (BM25) and by
    meaning (the chunks' own vectors), fused as the index fuses them. Queries take turns, so
    every field gets its best passage before any gets a second; the opening chunk comes first
    for a label or a summary, which depend on what the document is as a whole."""
    chunks = document_chunks(document)
    queries = prompts.retrieval_queries(kind, spec)
    terms = [lexical.terms(c["text"]) for c in chunks]
    vectors = embedded(tuple(queries))
    ranked = [
        fused(rank(query, chunks, terms), by_meaning(vector, chunks))
        for query, vector in zip(queries, vectors, strict=True)
    ]
    chosen: list[int] = [0] if chunks and kind != "extract" else []
    limit = settings.BATCH_PASSAGES
    for turn in range(max(map(len, ranked), default=0)):
        for order in ranked:
            if turn < len(order) and order[turn] not in chosen and len(chosen) < limit:
                chosen.append(order[turn])
    if not chosen and chunks:
        chosen = [0]  # nothing matched: the opening is the best guess
    passages = [
        {"n": n, "document_id": document.pk, "page": chunks[i]["page"],
         "chunk_no": chunks[i]["chunk_no"], "text": chunks[i]["text"]}
        for n, i in enumerate(chosen, start=1)
    ]  # fmt: skip
    number = {i: n for n, i in enumerate(chosen, start=1)}
    return passages, [[number[i] for i in order if i in number] for order in ranked]


# --- cells ----------------------------------------------------------------------------------


def cited(sources: list[int], passages: list[dict], fallback: list[int]) -> list[dict]:
    """The passages a value names as its sources; those found for it when it names none."""
    valid = [n for n in dict.fromkeys(sources) if 1 <= n <= len(passages)]
    return [passages[n - 1] for n in (valid or fallback or range(1, len(passages) + 1))]


def value_flags(kind: str, value: object, passages: list[dict]) -> list[str]:
    """A "not_in_passages" flag when an extracted number or date appears in none of its passages
    (assistant/grounding.py reads both the same way); "not_a_date" for an impossible date."""
    if value is None or kind not in ("number", "date"):
        return []
    if kind == "date":
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return ["not_a_date"]
    text = str(value)
    if kind == "number" and isinstance(value, float) and value.is_integer():
        text = str(int(value))
    stated = [v for v in grounding.values(text, names=False) if v.kind in ("number", "date")]
    known = grounding.evidence("\n".join(p["text"] for p in passages))
    missing = not stated or not all(grounding.found(v, known) for v in stated)
    return ["not_in_passages"] if missing else []


def make_cells(
    kind: str, spec: dict, output: dict, passages: list[dict], by_query: list[list[int]]
) -> dict:
    if kind == "extract":
        cells = {}
        for field, found in zip(spec["fields"], by_query, strict=True):
            answer = output[field["name"]]
            used = cited(answer["sources"], passages, found)
            cells[field["name"]] = {
                "value": answer["value"],
                "passages": used,
                "flags": value_flags(field["type"], answer["value"], used),
            }
        return cells
    used = cited(output["sources"], passages, [])
    if kind == "classify":
        column = "labels" if spec["multi"] else "label"
        value = list(dict.fromkeys(output["labels"])) if spec["multi"] else output["label"]
        return {column: {"value": value, "passages": used, "flags": []}}
    return {"summary": {"value": output["summary"].strip(), "passages": used, "flags": []}}


# --- after a crash --------------------------------------------------------------------------


def stuck() -> list[int]:
    """Runs that should be moving and that no live worker holds: queued (their message may be
    lost) or running under a lease that ran out (their worker died)."""
    expired = Q(lease_until=None) | Q(lease_until__lt=timezone.now())
    runs = BatchRun.objects.filter(status__in=[Run.QUEUED, Run.RUNNING]).filter(expired)
    return list(runs.values_list("pk", flat=True))
