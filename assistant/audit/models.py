"""The audit trail's tables: query records and events in one hash chain, and its head."""

from collections.abc import Iterable

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Chained(models.Model):
    """A row of the audit hash chain. Each row's hash covers the previous row's hash, its
    position and its content, so an edited, deleted, reordered or forged row breaks the chain.
    The database refuses UPDATE and DELETE on these tables (triggers, migration 0003); the one
    exception is a query record's finalisation and the purge of its expired content."""

    seq = models.BigIntegerField(unique=True, null=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        abstract = True


class QueryRecord(Chained):
    """The audit of one question: written before any token of the answer is shown, finalised
    (and chained) with the answer in the same transaction as the answer's message."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Pending")
        ANSWERED = "answered", _("Answered")
        REFUSED = "refused", _("Refused")  # nothing found in scope: no answer was improvised
        DENIED = "denied", _("Denied")  # the user may read no collection at all
        ERROR = "error", _("Error")
        STOPPED = "stopped", _("Stopped")  # the user stopped it; the partial answer is kept

    class Channel(models.TextChoices):
        CHAT = "chat", _("Chat")
        API = "api", "API"
        BATCH = "batch", _("Batch")  # one document's result in a batch job (assistant/batch)

    # Plain ids plus snapshots, not foreign keys: deleting a user, conversation or document
    # must never touch (or be blocked by) audit history.
    user_ref = models.BigIntegerField(null=True, db_index=True)
    username = models.CharField(max_length=150, db_index=True)
    group_keys = models.TextField(default="|")  # "|Legal|Sales|": the user's groups then
    conversation_ref = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    scope = models.JSONField(default=list)  # [{id, name}] of collections searched
    # ",3,7," — searchable on every database (JSON containment is not on SQLite).
    collection_keys = models.TextField(default=",")
    document_keys = models.TextField(default=",")
    retrieved = models.JSONField(default=list)  # [{point_id, document_id, sha256, ..., text}]
    question = models.TextField()
    prompt = models.JSONField(default=list)  # the exact messages sent to the model
    prompt_version = models.CharField(max_length=40, default="")
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict)
    answer = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True)
    completion_tokens = models.PositiveIntegerField(null=True)
    first_token_ms = models.PositiveIntegerField(null=True)
    latency_ms = models.PositiveIntegerField(null=True)
    finished_at = models.DateTimeField(null=True)
    purged_at = models.DateTimeField(null=True)  # content removed by retention; hashes kept

    # How retrieval and the answer were checked: the search query (a follow-up's stand-alone
    # rewrite), the relevance threshold, cited / dangling citations, unsupported sentences.
    grounding = models.JSONField(default=dict, blank=True)
    # The record this one asks again (regenerate) or asks in edited words (edit and resend).
    regenerates_ref = models.BigIntegerField(null=True, blank=True)
    edits_ref = models.BigIntegerField(null=True, blank=True)
    # Where the question came from: the chat, or the API with the id of the token it used.
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.CHAT)
    token_ref = models.BigIntegerField(null=True, blank=True)
    # Which kind of model server answered (on premises or external) and the rule that allowed it
    # for this scope: {"rule", "picked", "restricted", "route"} (assistant/endpoints.py).
    endpoint = models.CharField(max_length=12, default="on_premises")
    policy = models.JSONField(default=dict, blank=True)

    CONTENT_FIELDS = ("question", "retrieved", "prompt", "answer", "grounding")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.username}: {self.question[:60]}"

    @property
    def document_ids(self) -> list[int]:
        return [int(k) for k in self.document_keys.strip(",").split(",") if k]

    @property
    def group_names(self) -> list[str]:
        return [g.replace("%7C", "|").replace("%25", "%") for g in self.group_keys.split("|") if g]

    @staticmethod
    def group_key(name: str) -> str:
        """A group name as one "|name|" entry: a `|` (or `%`) in the name is escaped."""
        return "|" + name.replace("%", "%25").replace("|", "%7C") + "|"

    @staticmethod
    def group_keys_of(names: Iterable[str]) -> str:
        return "|" + "".join(QueryRecord.group_key(n)[1:] for n in sorted(names))


class AuditEvent(Chained):
    """A security-relevant action, with a snapshot of actor and target (type, id, label) so
    deleting either never erases or blocks history."""

    class Action(models.TextChoices):
        LOGIN = "login"
        LOGIN_FAILED = "login_failed"
        LOGOUT = "logout"
        ACCESS_DENIED = "access_denied"
        COLLECTION_CREATED = "collection_created"
        GRANTS_CHANGED = "grants_changed"
        RETENTION_CHANGED = "retention_changed"
        GROUP_CREATED = "group_created"
        MEMBERSHIP_CHANGED = "membership_changed"
        ROLES_CHANGED = "roles_changed"
        USER_DEACTIVATED = "user_deactivated"
        USER_REACTIVATED = "user_reactivated"
        SSO_LINKED = "sso_linked", "SSO Linked"
        UPLOAD = "upload"
        DOCUMENT_OPENED = "document_opened"
        REINGEST = "reingest"
        DELETE = "delete"
        AUDIT_VIEWED = "audit_viewed"
        AUDIT_EXPORTED = "audit_exported"
        AUDIT_PURGED = "audit_purged"
        ANSWER_COPIED = "answer_copied"
        FEEDBACK_GIVEN = "feedback_given"
        FEEDBACK_CHANGED = "feedback_changed"
        STARTERS_CHANGED = "starters_changed"
        SCOPE_CHANGED = "scope_changed"
        # Personal access tokens (assistant/tokens.py); the names are actions, not secrets.
        TOKEN_CREATED = "token_created"  # noqa: S105
        TOKEN_FIRST_USED = "token_first_used"  # noqa: S105
        TOKEN_REVOKED = "token_revoked"  # noqa: S105
        # Batch jobs (assistant/batch): each document's result is a query record of its own.
        BATCH_JOB_CREATED = "batch_job_created"
        BATCH_RUN_STARTED = "batch_run_started"
        BATCH_RUN_PAUSED = "batch_run_paused"
        BATCH_RUN_RESUMED = "batch_run_resumed"
        BATCH_RUN_CANCELLED = "batch_run_cancelled"
        BATCH_RUN_FINISHED = "batch_run_finished"
        # Models and policy (assistant/endpoints.py, assistant/usage.py).
        MODEL_REGISTERED = "model_registered"
        MODEL_CHANGED = "model_changed"
        SENSITIVITY_CHANGED = "sensitivity_changed"
        MODEL_PICKED = "model_picked"
        BUDGET_CHANGED = "budget_changed"
        BUDGET_EXCEEDED = "budget_exceeded"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_ref = models.BigIntegerField(null=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username} {self.action}"


class ChainHead(models.Model):
    """The last link of the chain; locked while a row is appended so links never fork."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"chain head at seq {self.seq}"
