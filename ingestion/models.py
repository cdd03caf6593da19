import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class Collection(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # Read grants: members of these groups may chat over the collection.
    groups = models.ManyToManyField(Group, blank=True, related_name="collections")
    # Manage grants: these users may upload, re-ingest and delete documents.
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="managed_collections"
    )
    # Query records that searched this collection keep their content this many days (then
    # `purge_audit` removes it, keeping hashes); empty keeps it forever. A legal hold keeps
    # everything regardless.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    # Questions offered on an empty chat to its readers, one a line; set by its managers.
    starters = models.TextField(blank=True)

    class Sensitivity(models.TextChoices):
        RESTRICTED = "restricted", _("Restricted: on-premises models only")
        INTERNAL = "internal", _("Internal: on-premises, or external models approved for it")

    # Which model servers may read its passages (assistant/endpoints.py); restricted by default.
    sensitivity = models.CharField(
        max_length=10, choices=Sensitivity.choices, default=Sensitivity.RESTRICTED
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def stored_name(instance: "Document", filename: str) -> str:
    # Files are stored under generated names, never the user's.
    return f"documents/{instance.collection_id}/{uuid.uuid4().hex}"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PARSING = "parsing", _("Parsing")
        EMBEDDING = "embedding", _("Embedding")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")
        ENCRYPTED = "encrypted", _("Encrypted")
        SKIPPED = "skipped", _("Skipped")
        # Deleted by a user: hidden from search and pages at once; a worker removes its points
        # (the web's Qdrant key may be read-only), then the row and the file.
        DELETING = "deleting", _("Deleting")

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    original_name = models.CharField(max_length=300)
    # Folder inside an uploaded ZIP or folder, or the message an attachment came from.
    path = models.CharField(max_length=500, blank=True)
    # The documents of one upload share a batch: the collection page shows its progress.
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    # A new version of a same-named file: the old one is retired once this one is ready.
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to=stored_name, max_length=300)
    extension = models.CharField(max_length=16)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Who is processing it, and until when: a claim expires unless its worker renews it, so a
    # second worker never takes a document that is in hand, and a dead worker's is taken again.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    chunks = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def label(self) -> str:
        return f"{self.path}/{self.original_name}" if self.path else self.original_name


class DocumentPage(models.Model):
    """One page of a document's text as parsed at ingestion: the page view reads it from here."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="page_texts")
    number = models.PositiveIntegerField()
    text = models.TextField()
    heading = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="unique_document_page")
        ]

    def __str__(self) -> str:
        return f"{self.document_id} p. {self.number}"


FINISHED = {
    Document.Status.READY,
    Document.Status.FAILED,
    Document.Status.ENCRYPTED,
    Document.Status.SKIPPED,
}
ACTIVE = [Document.Status.QUEUED, Document.Status.PARSING, Document.Status.EMBEDDING]


class Tombstone(models.Model):
    """What a deleted document was: a later upload of the same content is refused, not revived."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="tombstones")
    sha256 = models.CharField(max_length=64)
    name = models.CharField(max_length=300)
    deleted_at = models.DateTimeField(auto_now_add=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["collection", "sha256"])]

    def __str__(self) -> str:
        return self.name
