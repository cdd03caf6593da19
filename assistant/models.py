from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, default="New conversation")
    # Ids of the collections it searches, as picked; null: every collection the user can read.
    # Each question narrows it to what the user can read then (assistant/scope.py).
    scope = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    pinned = models.BooleanField(default=False)  # listed first in the sidebar
    # The model picked for it: a registry name, "auto", or "" for the default. Each question
    # uses it only if the policy allows it for the scope then (assistant/endpoints.py).
    model = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    # Sources shown with an answer: [{n, document_id, title, page, chunk_no, text, score}].
    sources = models.JSONField(default=list, blank=True)
    query = models.ForeignKey(
        "QueryRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class SsoIdentity(models.Model):
    """A provider's account (its issuer and subject) bound to an Enclave user. Single sign-on
    matches on this, never on the username, which the provider's users may change."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class Preference(models.Model):
    """What a user chose for themselves: the interface language (empty: the browser's)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.language or 'browser'}"


class AccessToken(models.Model):
    """A personal access token for the API (assistant/tokens.py). Only a hash of the secret is
    kept, and its first characters to tell tokens apart; it reads at most what its owner reads."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)  # "enc_" and the secret's first characters
    digest = models.CharField(max_length=64, unique=True)  # sha256 of the whole secret
    # Ids of the collections it may search, as picked; null: all its owner can read. Each
    # request narrows it to what the owner can read then.
    scope = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# The audit trail's models live with it, in the same app: their tables and hashes are unchanged.
class ModelEndpoint(models.Model):
    """An OpenAI-compatible model server an admin registered. The built-in default (LLM_*
    settings, the local vLLM server) is not a row: see assistant/endpoints.py."""

    class Location(models.TextChoices):
        ON_PREMISES = "on_premises", _("On premises")
        EXTERNAL = "external", _("External")

    name = models.CharField(max_length=100, unique=True)  # what users pick and the API lists
    base_url = models.URLField(max_length=500)
    model = models.CharField(max_length=200)  # the name the server knows it by
    # Never the key itself: the name of an environment variable, or a file, that holds it.
    api_key_env = models.CharField(max_length=100, blank=True)
    api_key_file = models.CharField(max_length=500, blank=True)
    context_length = models.PositiveIntegerField(default=8192)
    location = models.CharField(max_length=12, choices=Location.choices)
    # Prices per million tokens, in the currency of COST_CURRENCY; on-premises models' prices are
    # usually 0 (their usage is then also priced at the external models' prices: "saved").
    input_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    output_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    enabled = models.BooleanField(default=True)
    default = models.BooleanField(default=False)  # offered first; at most one
    hard_questions = models.BooleanField(default=False)  # where "Auto" sends hard questions
    # Internal collections whose passages this external model may read (restricted: never).
    approved_collections = models.ManyToManyField(
        "ingestion.Collection", blank=True, related_name="approved_models"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GroupBudget(models.Model):
    """The most tokens (prompt and completion) a group's members may use in a calendar month."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="budget")
    monthly_tokens = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.group}: {self.monthly_tokens} tokens a month"


class Usage(models.Model):
    """What one answer (chat, API, or a batch job's document) used, kept for the usage page and
    budgets: no content, so it outlives audit retention."""

    created_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="+")
    collections = models.ManyToManyField("ingestion.Collection", blank=True, related_name="+")
    channel = models.CharField(max_length=8)
    model = models.CharField(max_length=100)  # the registry name
    location = models.CharField(max_length=12, choices=ModelEndpoint.Location.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    record = models.OneToOneField(
        "assistant.QueryRecord", null=True, on_delete=models.SET_NULL, related_name="usage"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} on {self.model}: {self.prompt_tokens}+{self.completion_tokens}"


from assistant.audit.models import AuditEvent, Chained, ChainHead, QueryRecord  # noqa: E402
from assistant.batch.models import BatchJob, BatchResult, BatchRun  # noqa: E402


class Feedback(models.Model):
    """What the author of a conversation thought of one answer: one row per record and user,
    updated when they change their mind (each change is an audit event)."""

    class Rating(models.TextChoices):
        UP = "up", _("Helpful")
        DOWN = "down", _("Not helpful")

    class Reason(models.TextChoices):
        WRONG = "wrong", _("Wrong")
        NOT_IN_DOCUMENTS = "not_in_documents", _("Not in the documents")
        INCOMPLETE = "incomplete", _("Incomplete")
        OUTDATED = "outdated", _("Outdated")

    record = models.ForeignKey(QueryRecord, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback"
    )
    rating = models.CharField(max_length=8, choices=Rating.choices)
    reasons = models.JSONField(default=list, blank=True)  # Reason values
    comment = models.TextField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["record", "user"], name="feedback_one_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on record {self.record_id}: {self.rating}"

    def reason_labels(self) -> list[str]:
        labels = dict(self.Reason.choices)
        return [labels.get(r, r) for r in self.reasons]


__all__ = [
    "AccessToken", "AuditEvent", "BatchJob", "BatchResult", "BatchRun", "Chained", "ChainHead",
    "Conversation", "Feedback", "Message", "QueryRecord", "SsoIdentity",
]  # fmt: skip
