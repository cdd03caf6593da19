from django.conf import settings
from django.db import models


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, default="New conversation")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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


class QueryRecord(models.Model):
    """The audit of one question: written before any token of the answer is shown."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        ANSWERED = "answered"
        NO_SOURCES = "no_sources"
        ERROR = "error"

    # SET_NULL plus a username snapshot: deleting a user never deletes audit history.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    conversation = models.ForeignKey(
        Conversation, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    scope = models.JSONField(default=list)  # [{id, name}] of collections searched
    question = models.TextField()
    retrieved = models.JSONField(default=list)  # [{point_id, document_id, sha256, chunk_no, ...}]
    prompt = models.JSONField(default=list)  # the exact messages sent to the model
    model = models.CharField(max_length=200)
    params = models.JSONField(default=dict)
    answer = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True)
    completion_tokens = models.PositiveIntegerField(null=True)
    first_token_ms = models.PositiveIntegerField(null=True)
    latency_ms = models.PositiveIntegerField(null=True)
    # How retrieval and the answer were checked: the search query (a follow-up's stand-alone
    # rewrite), the relevance threshold, cited / dangling citations, unsupported sentences.
    grounding = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.username}: {self.question[:60]}"


class AuditEvent(models.Model):
    """A security-relevant action. Rows are never updated or deleted by the application, and
    keep a snapshot of actor and target so deleting either never erases history."""

    class Action(models.TextChoices):
        LOGIN = "login"
        LOGIN_FAILED = "login_failed"
        LOGOUT = "logout"
        ACCESS_DENIED = "access_denied"
        COLLECTION_CREATED = "collection_created"
        GRANTS_CHANGED = "grants_changed"
        GROUP_CREATED = "group_created"
        MEMBERSHIP_CHANGED = "membership_changed"
        ROLES_CHANGED = "roles_changed"
        USER_DEACTIVATED = "user_deactivated"
        USER_REACTIVATED = "user_reactivated"
        UPLOAD = "upload"
        REINGEST = "reingest"
        DELETE = "delete"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
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
