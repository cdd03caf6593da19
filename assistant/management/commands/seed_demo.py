"""Create the demo: four users, two groups, two collections ingested from ingestion/demo/.
Safe to run again: existing rows are left alone."""

from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from assistant import people
from ingestion import documents
from ingestion.models import Collection

DEMO_DIR = Path(__file__).resolve().parents[3] / "ingestion" / "demo"

# (username, password, role, groups) — demo credentials, printed by `make run`.
USERS = [
    ("admin", "enclave-admin", "collection admin (superuser)", []),
    ("alice", "enclave-alice", "employee, Staff group", ["Staff"]),
    ("bob", "enclave-bob", "employee, Clinicians group", ["Clinicians"]),
    ("audrey", "enclave-audrey", "compliance auditor", []),
]
COLLECTIONS = [
    ("Employee handbook", "Leave, expenses, remote work and security.", "handbook", "Staff"),
    ("Clinical guidelines", "Ward guidelines for clinical staff.", "clinical", "Clinicians"),
]  # fmt: skip


class Command(BaseCommand):
    help = "Create the demo users, groups and collections (idempotent)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        for name, password, _role, groups in USERS:
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_password(password)
                user.is_superuser = user.is_staff = name == "admin"
                user.save()
            for group in groups:
                user.groups.add(Group.objects.get_or_create(name=group)[0])
        User.objects.get(username="audrey").groups.add(people.role_group("auditor"))
        admin = User.objects.get(username="admin")
        for name, description, folder, group in COLLECTIONS:
            collection, created = Collection.objects.get_or_create(
                name=name, defaults={"description": description}
            )
            collection.groups.add(Group.objects.get(name=group))
            if created:
                collection.managers.add(admin)
                files = [
                    SimpleUploadedFile(path.name, path.read_bytes())
                    for path in sorted((DEMO_DIR / folder).iterdir())
                ]
                documents.upload(collection, files, admin)
        self.stdout.write("Demo ready.")
