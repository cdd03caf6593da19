"""A batch job (what to ask of every document), its runs, and one result row per document and
run. Imported by assistant/models.py, so the app label stays `assistant`."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BatchJob(models.Model):
    """What to run: one kind of instruction over the ready documents of some collections.

    `spec` by kind (assistant/batch/schema.py checks it):
    - classify: {"labels": [{"name", "description"}], "multi": bool}
    - extract: {"fields": [{"name", "type", "description", "choices"}]}, type one of FIELD_TYPES
    - summarise: {"length": "short" | "medium" | "long", "audience": str}
    """

    class Kind(models.TextChoices):
        CLASSIFY = "classify", _("Classify")
        EXTRACT = "extract", _("Extract")
        SUMMARISE = "summarise", _("Summarise")

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batch_jobs"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    collections = models.ManyToManyField("ingestion.Collection", related_name="batch_jobs")
    spec = models.JSONField(default=dict)
    instruction = models.TextField(blank=True)  # extra words from the owner, added to the prompt
    # The model picked ("" the default); each run uses it only if the policy allows it for the
    # job's collections then (assistant/endpoints.py).
    model = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_batch_jobs", "Can run batch jobs on collections they can read")]

    def __str__(self) -> str:
        return self.name


class BatchRun(models.Model):
    """One pass of a job over its documents. The spec, schema, model and parameters are copied
    in at the start, so a run's results stay comparable after the job is edited."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="runs")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    preview = models.BooleanField(default=False)  # the first few documents only
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=BatchJob.Kind.choices)
    spec = models.JSONField(default=dict)
    instruction = models.TextField(blank=True)
    schema = models.JSONField(default=dict)  # the JSON schema sent as response_format
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict)  # max_tokens, temperature, concurrency, passages
    # Who is working on it and until when: a worker renews its lease as documents finish, so a
    # run whose worker died is taken up again (without redoing finished documents).
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.job} run {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def can_pause(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def can_resume(self) -> bool:
        return self.status in (self.Status.PAUSED, self.Status.FAILED)

    @property
    def can_cancel(self) -> bool:
        return not self.is_finished or self.status == self.Status.FAILED


class BatchResult(models.Model):
    """One document's result in one run. `cells` maps each field (extract), "label"/"labels"
    (classify) or "summary" (summarise) to {"value", "passages": [{n, document_id, page,
    chunk_no, text}], "flags": [...]}; a flag "not_in_passages" marks a number or date that no
    cited passage states."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")  # not read: the owner can no longer read it, or gone
        CANCELLED = "cancelled", _("Cancelled")

    run = models.ForeignKey(BatchRun, on_delete=models.CASCADE, related_name="results")
    # Null once the document is deleted; its title and version stay for the table and diffs.
    document = models.ForeignKey(
        "ingestion.Document", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    document_title = models.CharField(max_length=300)
    # The document across its versions (collection, folder, file name: what
    # ingestion.documents.settle_versions treats as one document), so runs compare by it after
    # a new version replaced the row. "" on rows made before it was kept.
    document_key = models.CharField(max_length=850, blank=True)
    document_sha256 = models.CharField(max_length=64)
    collection_id = models.BigIntegerField()
    position = models.PositiveIntegerField(default=0)  # processing order
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    output = models.JSONField(null=True, blank=True)  # the model's parsed JSON, as it came
    cells = models.JSONField(default=dict, blank=True)
    passages = models.JSONField(default=list, blank=True)  # every passage the prompt held
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)  # a model server failure is tried again
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    record = models.ForeignKey(
        "assistant.QueryRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "document"], name="batch_result_once")
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.document_title} in run {self.run_id}: {self.status}"

    @property
    def flagged(self) -> bool:
        return any(cell.get("flags") for cell in self.cells.values())
