"""Batch jobs as the views see them: who may run them on what, define, start (or preview),
pause, resume, cancel, read progress, compare two runs. Each change writes its audit event in
the same transaction; work is enqueued after commit, by task name. The model that reads a run's
documents is the policy's decision (assistant/endpoints.py) over the job's collections."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext

from assistant import access, audit, endpoints
from assistant.batch import schema
from assistant.batch.models import BatchJob, BatchResult, BatchRun
from assistant.batch.schema import BadSpec
from assistant.celery import app
from assistant.usage import over_budget
from ingestion.models import Collection, Document

log = logging.getLogger(__name__)
Run, Result = BatchRun.Status, BatchResult.Status
PERMISSION = "assistant.run_batch_jobs"

__all__ = ["BadSpec"]


# --- who may run jobs on what ---------------------------------------------------------------


def batch_collections(user: User | AnonymousUser) -> QuerySet[Collection]:
    """Collections the user may run jobs on: every collection they can read with the
    run_batch_jobs permission; without it, those they manage (collection admins)."""
    if user.is_active and user.has_perm(PERMISSION):
        return access.collections_visible_to(user)
    return access.collections_managed_by(user)


def can_run_batch_jobs(user: User) -> bool:
    return user.is_active and (user.has_perm(PERMISSION) or batch_collections(user).exists())


def jobs_of(user: User) -> QuerySet[BatchJob]:
    jobs = BatchJob.objects.all() if user.is_superuser else BatchJob.objects.filter(owner=user)
    return jobs.prefetch_related("collections")


def own_job(user: User, job_id: int) -> BatchJob:
    """The user's own job (results show what its owner could read), or a 404."""
    return access._visible_or_404(user, jobs_of(user), job_id)


def own_run(user: User, run_id: int) -> BatchRun:
    runs = BatchRun.objects.filter(job__in=jobs_of(user)).select_related("job")
    return access._visible_or_404(user, runs, run_id)


def results(user: User, run: BatchRun) -> QuerySet[BatchResult]:
    """The run's rows the user may see now: a document of a collection they can no longer
    read is withheld, as the chat withholds such a citation."""
    readable = access.collections_visible_to(user).values("pk")
    return run.results.filter(collection_id__in=readable).order_by("position", "id")


# --- defining and running -------------------------------------------------------------------


def _checked(user: User, name: str, kind: str, collection_ids: list[int], spec: dict) -> tuple:
    name = " ".join(name.split())[:200]
    if not name:
        raise BadSpec(gettext("Give the job a name."))
    collections = list(batch_collections(user).filter(pk__in=collection_ids))
    if not collections or len(collections) != len(set(collection_ids)):
        raise BadSpec(gettext("Choose collections you may run jobs on."))
    return name, collections, schema.clean_spec(kind, spec)


def _checked_model(model: str) -> str:
    """ "" (the default) or an enabled model of the registry. Whether the policy lets it read
    the job's collections is decided at each run, which falls back to an allowed model."""
    if model and endpoints.named(model) is None:
        raise BadSpec(gettext("Choose a model from the list."))
    return model


def models() -> list[endpoints.Endpoint]:
    """The models a job may name (the form's choices): every enabled one."""
    return endpoints.registered()


def decision(job: BatchJob, picked: str, collection_ids: Iterable[int] = ()) -> endpoints.Decision:
    """The model that reads a run's documents: the pick if the policy allows it over every
    collection the job names and every one the run reads (any restricted: on premises only)."""
    ids = set(job.collections.values_list("pk", flat=True)) | set(collection_ids)
    return endpoints.decide(list(Collection.objects.filter(pk__in=ids)), picked)


def job_detail(job: BatchJob) -> dict:
    """What the audit trail keeps of a job's definition: everything a run will be asked."""
    return {
        "name": job.name,
        "kind": job.kind,
        "collections": sorted(job.collections.values_list("pk", flat=True)),
        "spec": job.spec,
        "instruction": job.instruction,
        "model": job.model,
    }


def create_job(
    user: User,
    *,
    name: str,
    kind: str,
    collection_ids: list[int],
    spec: dict,
    instruction: str = "",
    model: str = "",
) -> BatchJob:
    name, collections, spec = _checked(user, name, kind, collection_ids, spec)
    model = _checked_model(model)
    with transaction.atomic():
        job = BatchJob.objects.create(
            name=name,
            owner=user,
            kind=kind,
            spec=spec,
            instruction=instruction.strip()[:2000],
            model=model,
        )
        job.collections.set(collections)
        audit.record(audit.Action.BATCH_JOB_CREATED, user, job, detail=job_detail(job))
    return job


def update_job(
    job: BatchJob,
    user: User,
    *,
    name: str,
    collection_ids: list[int],
    spec: dict,
    instruction: str = "",
    model: str = "",
) -> BatchJob:
    """Change a job; its earlier runs keep what they ran with."""
    name, collections, spec = _checked(user, name, job.kind, collection_ids, spec)
    model = _checked_model(model)
    with transaction.atomic():
        job.name, job.spec, job.instruction = name, spec, instruction.strip()[:2000]
        job.model = model
        job.save()
        job.collections.set(collections)
        # The same action as creating it (one more would change the audit table's choices);
        # "edited" tells the two apart, and the detail is the whole job as it now is.
        detail = {"edited": True, **job_detail(job)}
        audit.record(audit.Action.BATCH_JOB_CREATED, user, job, detail=detail)
    return job


def enqueue(run_id: int) -> None:
    try:
        app.send_task("assistant.batch.tasks.run_batch", args=[run_id])
    except Exception:
        # The broker is down: the run stays queued and the worker's start picks it up.
        log.warning("could not enqueue batch run %s; it stays queued", run_id)


def document_key(document: Document) -> str:
    """One document across its versions: settle_versions retires an older ready version of the
    same file name in the same folder of the same collection, so runs compare by this."""
    return f"{document.collection_id}:{document.label}"


def start(job: BatchJob, user: User, *, preview: bool = False) -> BatchRun:
    """A run over the ready documents of the job's collections that its owner may use now;
    a preview takes the first BATCH_PREVIEW_DOCUMENTS of them."""
    allowed = batch_collections(job.owner).filter(pk__in=job.collections.values("pk"))
    ready = Document.objects.filter(collection__in=allowed, status=Document.Status.READY)
    ready = ready.order_by("collection_id", "pk").only(
        "pk", "title", "sha256", "collection_id", "path", "original_name"
    )
    documents = list(ready[: settings.BATCH_PREVIEW_DOCUMENTS] if preview else ready)
    if not documents:
        raise BadSpec(gettext("The job's collections have no ready document it may read."))
    if spent := over_budget(job.owner):
        audit.record(audit.Action.BUDGET_EXCEEDED, user, job, detail={"job": job.pk})
        raise BadSpec(spent)
    spec = schema.clean_spec(job.kind, job.spec)
    # Decided again as the documents are read (work.py): shown on the run page meanwhile.
    decided = decision(job, job.model, {d.collection_id for d in documents})
    params = {
        "max_tokens": schema.max_tokens(job.kind, spec),
        "temperature": 0,
        "concurrency": settings.BATCH_CONCURRENCY,
        "passages": settings.BATCH_PASSAGES,
        "response_format": "json_schema",
        "picked": job.model,
        "endpoint": decided.endpoint.location,
        "policy": decided.policy,
    }
    with transaction.atomic():
        run = BatchRun.objects.create(
            job=job,
            started_by=user,
            preview=preview,
            kind=job.kind,
            spec=spec,
            instruction=job.instruction,
            schema=schema.json_schema(job.kind, spec),
            model=decided.endpoint.name,
            params=params,
        )
        BatchResult.objects.bulk_create(
            BatchResult(
                run=run,
                document_id=d.pk,
                document_title=d.title[:300],
                document_key=document_key(d),
                document_sha256=d.sha256,
                collection_id=d.collection_id,
                position=i,
            )
            for i, d in enumerate(documents)
        )
        audit.record(
            audit.Action.BATCH_RUN_STARTED,
            user,
            run,
            label=str(run),
            detail={
                "job": job.pk,
                "preview": preview,
                "documents": len(documents),
                "params": params,
            },
        )
        transaction.on_commit(lambda: enqueue(run.pk))
    return run


def preview(job: BatchJob, user: User) -> BatchRun:
    return start(job, user, preview=True)


def _change(run: BatchRun, user: User, action: str, allowed: str, status: str) -> bool:
    """Move the run to `status` if its property `allowed` (can_pause...) says it may."""
    with transaction.atomic():
        locked = BatchRun.objects.select_for_update().get(pk=run.pk)
        if not getattr(locked, allowed):
            return False
        locked.status = status
        if status == Run.CANCELLED:
            locked.finished_at = timezone.now()
            locked.results.filter(status=Result.PENDING).update(status=Result.CANCELLED)
        if status == Run.QUEUED:  # resumed: documents that failed are tried again
            locked.error = ""
            locked.results.filter(status=Result.FAILED).update(
                status=Result.PENDING, attempts=0, error=""
            )
        locked.save(update_fields=["status", "finished_at", "error"])
        audit.record(action, user, locked, label=str(locked), detail={"job": locked.job_id})
    run.refresh_from_db()
    return True


def pause(run: BatchRun, user: User) -> bool:
    """No new document starts; those in flight finish and are kept."""
    return _change(run, user, audit.Action.BATCH_RUN_PAUSED, "can_pause", Run.PAUSED)


def resume(run: BatchRun, user: User) -> bool:
    """Go on with the documents not done yet, failed ones included; done ones are kept."""
    changed = _change(run, user, audit.Action.BATCH_RUN_RESUMED, "can_resume", Run.QUEUED)
    if changed:
        transaction.on_commit(lambda: enqueue(run.pk))
    return changed


def cancel(run: BatchRun, user: User) -> bool:
    return _change(run, user, audit.Action.BATCH_RUN_CANCELLED, "can_cancel", Run.CANCELLED)


def run_now(run_id: int) -> None:
    """Process a run in this thread until it stops (tests, the bench)."""
    from assistant.batch import work

    while (wait := work.process(run_id)) is not None:
        if wait:
            raise RuntimeError(f"batch run {run_id} is held by another worker")


def resume_stuck() -> int:
    """Enqueue runs that no live worker holds (the worker's start calls this)."""
    from assistant.batch import work

    ids = work.stuck()
    for pk in ids:
        enqueue(pk)
    return len(ids)


# --- reading --------------------------------------------------------------------------------


@dataclass
class Progress:
    run: BatchRun = field(repr=False)
    status: str
    total: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    pending: int
    running: int
    prompt_tokens: int
    completion_tokens: int
    eta_seconds: int | None

    @cached_property
    def flagged(self) -> int:
        """Done documents with a flagged value: it reads every result's cells, so only when
        asked (the two-second progress poll never asks)."""
        done = self.run.results.filter(status=Result.DONE).only("cells")
        return sum(1 for r in done if r.flagged)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped + self.cancelled

    @property
    def percent(self) -> int:
        return int(100 * self.finished / self.total) if self.total else 100

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


ETA_WINDOW = timedelta(minutes=10)  # the rate of the last minutes, not since the start (pauses)


def progress(run: BatchRun) -> Progress:
    rows = run.results.values("status").annotate(n=Count("id"))
    counts = {row["status"]: row["n"] for row in rows}
    tokens = run.results.aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    remaining = counts.get(Result.PENDING, 0) + counts.get(Result.RUNNING, 0)
    eta = None
    if run.status == Run.RUNNING and remaining:
        now = timezone.now()
        recent = run.results.filter(finished_at__gte=now - ETA_WINDOW, started_at__isnull=False)
        window = recent.aggregate(n=Count("id"), since=Min("started_at"))
        if window["n"] and window["since"]:
            rate = window["n"] / max((now - window["since"]).total_seconds(), 1.0)
            eta = int(remaining / rate)
    return Progress(
        run=run,
        status=run.status,
        total=sum(counts.values()),
        done=counts.get(Result.DONE, 0),
        failed=counts.get(Result.FAILED, 0),
        skipped=counts.get(Result.SKIPPED, 0),
        cancelled=counts.get(Result.CANCELLED, 0),
        pending=counts.get(Result.PENDING, 0),
        running=counts.get(Result.RUNNING, 0),
        prompt_tokens=tokens["p"] or 0,
        completion_tokens=tokens["c"] or 0,
        eta_seconds=eta,
    )


def columns(run: BatchRun) -> list[str]:
    return schema.columns(run.kind, run.spec)


@dataclass
class Change:
    document_id: int | None
    collection_id: int
    title: str
    column: str
    before: object
    after: object
    reason: str  # "changed", "document_changed", "added", "removed"


def previous_run(run: BatchRun) -> BatchRun | None:
    earlier = run.job.runs.filter(preview=False, created_at__lte=run.created_at).exclude(pk=run.pk)
    return earlier.filter(Q(created_at__lt=run.created_at) | Q(pk__lt=run.pk)).first()


def compare(old: BatchRun, new: BatchRun) -> list[Change]:
    """What differs per document and column between two runs of a job. Documents are matched
    by their key, not their row: a new version is a new row and retires the old one. A
    document read in another version is listed with every column; otherwise only values that
    differ."""

    def by_key(run: BatchRun) -> dict[str, BatchResult]:
        rows: dict[str, BatchResult] = {}
        for r in run.results.filter(status=Result.DONE):
            # Rows from before keys were kept, and files of one upload sharing a name, are
            # told apart by their row (a key never matches another run's row by accident).
            key = r.document_key or f"row:{r.pk}"
            rows[f"{key}#{r.document_id or r.pk}" if key in rows else key] = r
        return rows

    before, after = by_key(old), by_key(new)
    names = list(dict.fromkeys(columns(old) + columns(new)))
    changes: list[Change] = []
    for key in dict.fromkeys([*after, *before]):
        then, now = before.get(key), after.get(key)
        if then is None or now is None:
            row = now or then
            assert row is not None
            reason = "added" if then is None else "removed"
            changes.append(
                Change(
                    row.document_id, row.collection_id, row.document_title, "", None, None, reason
                )
            )
            continue
        version_changed = then.document_sha256 != now.document_sha256
        for column in names:
            a = then.cells.get(column, {}).get("value")
            b = now.cells.get(column, {}).get("value")
            if version_changed or a != b:
                reason = "document_changed" if version_changed else "changed"
                changes.append(
                    Change(
                        now.document_id, now.collection_id, now.document_title, column, a, b, reason
                    )
                )
    return changes
