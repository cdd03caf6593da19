"""Plain make_* helpers for test data. Documents are made here, not read from ../shared."""

import io
import time
from collections.abc import Iterable
from functools import cache

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion import documents, pipeline
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


def ingest_now(document_id: int, timeout: float = 120) -> None:
    """Ingest in this process, as a worker would. When the test stack's Celery worker already
    holds the document (its upload enqueued it), wait for that run instead of racing it."""
    if not pipeline.ingest(document_id):
        return
    deadline = time.monotonic() + timeout
    while not (document := Document.objects.get(pk=document_id)).is_finished:
        if time.monotonic() > deadline:
            raise AssertionError(f"{document} still {document.status} after {timeout} s")
        time.sleep(0.2)


def remove_deleted() -> None:
    """The worker's half of every delete, run in this process as the worker would."""
    for pk in Document.objects.filter(status=Document.Status.DELETING).values_list("pk", flat=True):
        documents.finish_removal(pk)


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


def make_docx(
    paragraphs: list[str],
    table: list[list[str]] | None = None,
    *,
    headings: dict[str, str] | None = None,
    document_xml: bytes | None = None,
) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.rows[r].cells[c].text = value
    for heading, text in (headings or {}).items():
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    if document_xml is not None:
        return replace_part(buffer.getvalue(), "word/document.xml", document_xml)
    return buffer.getvalue()


def replace_part(archive: bytes, name: str, content: bytes) -> bytes:
    """An OOXML file with one part swapped: how hostile XML gets inside a real container."""
    import zipfile

    source, target = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, content if info.filename == name else source.read(info))
    return target.getvalue()


def make_pptx(slides: list[tuple[str, str, str]]) -> bytes:
    """Slides of (title, body, speaker notes)."""
    from pptx import Presentation

    presentation = Presentation()
    for title, body, notes in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def make_xlsx(
    sheets: dict[str, list[list[object]]], *, part: tuple[str, bytes] | None = None
) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return replace_part(buffer.getvalue(), *part) if part else buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def build_pdf(objects: list[bytes]) -> bytes:
    """A PDF assembled by hand, object by object, with a correct xref: for files no sane writer
    makes (cyclic page trees, streams that inflate a thousandfold)."""
    body, offsets = b"%PDF-1.4\n", []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    return body + trailer % (len(objects) + 1, xref)


def make_stream_pdf(stream: bytes) -> bytes:
    """One page whose content stream is the given (already deflated) bytes."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )
