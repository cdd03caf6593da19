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

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.username}: {self.question[:60]}"
