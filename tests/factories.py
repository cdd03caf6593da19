"""Plain make_* helpers for test data. Documents are made here, not read from ../shared."""

import io
from collections.abc import Iterable
from functools import cache

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion import documents
from ingestion.models import Collection, Document

PASSWORD = "correct-horse-battery"


def make_group(name: str) -> Group:
    return Group.objects.get_or_create(name=name)[0]


@cache
def password_hash() -> str:
    # argon2 takes a fifth of a second by design: hash the shared test password once.
    return make_password(PASSWORD)


def make_user(username: str, *, groups: Iterable[str] = (), **extra: object) -> User:
    user = User.objects.create(username=username, password=password_hash(), **extra)
    for name in groups:
        user.groups.add(make_group(name))
    return user


def make_auditor(username: str = "auditor") -> User:
    user = make_user(username)
    user.user_permissions.add(Permission.objects.get(codename="view_queryrecord"))
    return user


def make_collection(
    name: str, *, groups: Iterable[str] = (), managers: Iterable[User] = ()
) -> Collection:
    collection = Collection.objects.create(name=name)
    collection.groups.set([make_group(g) for g in groups])
    collection.managers.set(list(managers))
    return collection


def make_document(
    collection: Collection, name: str, content: bytes, *, user: User | None = None
) -> Document:
    return documents.upload(collection, [SimpleUploadedFile(name, content)], user)[0]


def make_pdf(pages: list[str], *, password: str | None = None) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    encrypt = StandardEncryption(password, canPrint=0) if password else None
    pdf = canvas.Canvas(buffer, pagesize=A4, encrypt=encrypt)
    for text in pages:
        y = 800
        for line in text.splitlines():
            pdf.drawString(50, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.rows[r].cells[c].text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
