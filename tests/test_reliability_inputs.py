"""Section C of the reliability checklist (../shared/RELIABILITY.md, items 14-23): bad inputs to
ingestion, sent through HTTP and read by the real parse child. Every hostile file is built here,
byte by byte, from the published description of the attack."""

import io
import re
import shutil
import socket
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assistant.models import QueryRecord
from ingestion import documents, index, pipeline
from ingestion.models import Document
from ingestion.parsing import ParseError, parse_file
from ingestion.tasks import ingest_document
from tests.assistant.test_chat import ask
from tests.conftest import login
from tests.factories import (
    build_pdf,
    make_document,
    make_docx,
    make_pdf,
    make_stream_pdf,
    make_xlsx,
    replace_part,
)

Status = Document.Status


def post(people, files, **extra):
    url = reverse("ingestion:upload", args=[people.legal.pk])
    return login(people.owner).post(url, {"files": files, **extra}, follow=True)


def ingest_all() -> None:
    for pk in Document.objects.filter(status=Status.QUEUED).values_list("pk", flat=True):
        pipeline.ingest(pk)


def by_name() -> dict[str, Document]:
    return {d.original_name: d for d in Document.objects.all()}


def download(client, document: Document):
    return client.get(reverse("ingestion:document_file", args=[document.pk]))


def tokens(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


# --- 14. zero-byte files -----------------------------------------------------------------------


def test_zero_byte_files_end_failed_and_the_chat_never_answers_from_another_file(
    people, fake_llm
) -> None:
    """Reliability #14: a zero-byte PDF, DOCX and TXT (and a PDF whose one page is blank) each end
    failed with a clear reason, no stored file for the empty ones and no chunks. A question about
    them finds nothing: the model is never called with an empty context, and nothing of the
    other collection's file is used instead (Open WebUI #4601)."""
    other = make_document(people.sales, "budget.txt", b"SECRET-CANARY: the budget is 3 million.")
    pipeline.ingest(other.pk)
    empty = [SimpleUploadedFile(n, b"") for n in ("empty.pdf", "empty.docx", "empty.txt")]
    post(people, [*empty, SimpleUploadedFile("blank.pdf", make_pdf([""]))])
    ingest_all()
    legal = {d.original_name: d for d in people.legal.documents.all()}
    assert {n: (d.status, d.error, d.chunks) for n, d in legal.items()} == {
        "empty.pdf": (Status.FAILED, "The file is empty.", 0),
        "empty.docx": (Status.FAILED, "The file is empty.", 0),
        "empty.txt": (Status.FAILED, "The file is empty.", 0),
        "blank.pdf": (Status.FAILED, "No text could be extracted from the file.", 0),
    }
    assert not any(legal[n].file for n in ("empty.pdf", "empty.docx", "empty.txt"))
    assert all(index.count(d.pk) == 0 for d in legal.values())

    events = ask(people.teammate, "What is the budget in the empty file?")
    assert "found nothing" in tokens(events)
    assert fake_llm.requests == []  # no prompt at all, so no empty context
    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.REFUSED and record.retrieved == []
    assert "SECRET-CANARY" not in str(events)


# --- 15. extension/magic mismatch --------------------------------------------------------------

SCRIPT = b"<html><body><script>alert(document.cookie)</script>Polyglot words</body></html>\n"


def test_mismatched_files_are_refused_and_download_as_attachments_with_nosniff(people) -> None:
    """Reliability #15: a real ELF program renamed .docx, HTML renamed .pdf, and both orders of a
    PDF/HTML polyglot (HTML first named .pdf, PDF first named .html) end failed with the type
    mismatch named (ASVS 5.2.2). Each download is `attachment`, application/octet-stream,
    `nosniff`, sandboxed: never inline. A PDF-first polyglot named .pdf is a valid PDF and is
    read as one; it opens inline only as application/pdf with `nosniff`, so no browser renders
    its HTML."""
    elf = Path(shutil.which("true") or "/bin/true").read_bytes()
    assert elf.startswith(b"\x7fELF")
    pdf = make_pdf(["Polyglot words on a page."])
    post(
        people,
        [
            SimpleUploadedFile("program.docx", elf),
            SimpleUploadedFile("page.pdf", SCRIPT),
            SimpleUploadedFile("html-first.pdf", SCRIPT + pdf),
            SimpleUploadedFile("pdf-first.html", pdf + SCRIPT),
            SimpleUploadedFile("pdf-first.pdf", make_pdf(["Another polyglot."]) + SCRIPT),
        ],
    )
    ingest_all()
    documents_ = by_name()
    errors = {n: d.error for n, d in documents_.items() if d.status == Status.FAILED}
    assert errors == {
        "program.docx": "The file is named .docx but its content is a program, not a DOCX file.",
        "page.pdf": "The file is named .pdf but its content is text, not a PDF file.",
        "html-first.pdf": "The file is named .pdf but its content is text, not a PDF file.",
        "pdf-first.html": "The file is named .html but its content is a PDF file, not text.",
    }
    client = login(people.teammate)
    for name in errors:
        response = download(client, documents_[name])
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;"), name
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"].startswith("sandbox")
    polyglot = documents_["pdf-first.pdf"]
    assert polyglot.status == Status.READY
    response = download(client, polyglot)
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- 16. size limits ---------------------------------------------------------------------------


def test_the_shipped_limit_of_100_files_refuses_101_whole(people) -> None:
    """Reliability #16: 101 files in one multipart request, at the shipped settings
    (DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_UPLOAD = 100, CVE-2023-24580), are refused with
    a message and nothing is stored."""
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == settings.MAX_FILES_PER_UPLOAD == 100
    files = [SimpleUploadedFile(f"{n}.txt", b"Rule %d." % n) for n in range(101)]
    response = post(people, files)
    assert "At most 100 files per upload." in response.content.decode()
    assert not Document.objects.exists()


def test_a_file_one_byte_over_the_limit_is_dropped_and_one_at_the_limit_kept(
    people, settings
) -> None:
    """Reliability #16: a file of MAX_UPLOAD_BYTES + 1 is dropped by the streaming handler (it
    stops reading at the first chunk past the limit: tests/ingestion/test_bulk.py), a file of
    exactly MAX_UPLOAD_BYTES is accepted."""
    settings.MAX_UPLOAD_BYTES = 4096
    files = [
        SimpleUploadedFile("over.txt", b"o" * 4097),
        SimpleUploadedFile("at.txt", b"a" * 4096),
    ]
    page = post(people, files).content.decode()
    assert "over.txt is larger than" in page
    assert list(Document.objects.values_list("original_name", "size")) == [("at.txt", 4096)]


# --- 17. OOXML zip bomb ------------------------------------------------------------------------


def declaring(archive: bytes, member: str, size: int) -> bytes:
    """The archive with `member`'s uncompressed size rewritten in its local header and central
    directory: a ZIP that promises more than it holds, as a bomb's directory does."""
    data = bytearray(archive)
    name = member.encode()
    for signature, field in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            name_at = start + (30 if field == 22 else 46)
            if data[name_at : name_at + len(name)] == name:
                data[start + field : start + field + 4] = size.to_bytes(4, "little")
            start += 4
    return bytes(data)


def many_members(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
        for n in range(count - 1):
            archive.writestr(f"word/media/{n}.xml", b"")
    return buffer.getvalue()


def test_ooxml_bombs_are_refused_from_the_central_directory_and_never_retried(people) -> None:
    """Reliability #17: a DOCX whose word/document.xml declares 1 GB from ~1 MB compressed, one
    that declares more than the 1 GiB unpacked limit, and one with 100,000 entries each end
    failed with the archive limit named. The refusal comes from the central directory before
    anything is decompressed: the declared sizes are lies, so inflating would fail differently.
    Each is parsed once (attempts == 1): a redelivered task and the start-up requeue leave it
    failed."""
    docx = make_docx(["Quarterly numbers."])
    filler = zlib.compress(bytes(range(256)) * 4096)  # ~1 MB that does not compress
    padded = replace_part(docx, "word/document.xml", b"<w:document>" + filler)
    post(
        people,
        [
            SimpleUploadedFile("ratio.docx", declaring(padded, "word/document.xml", 10**9)),
            SimpleUploadedFile("size.docx", declaring(docx, "word/document.xml", 2**30 + 1)),
            SimpleUploadedFile("members.docx", many_members(100_000)),
        ],
    )
    ingest_all()
    errors = {n: d.error for n, d in by_name().items()}
    assert "compressed suspiciously well (a ZIP bomb?)" in errors["ratio.docx"]
    assert "would unpack to 1024 MB, more than the 1024 MB allowed" in errors["size.docx"]
    assert errors["members.docx"] == "The archive holds 100000 files, more than 10000."
    for document in Document.objects.all():
        ingest_document.apply(args=[document.pk]).get()  # a redelivery
        document.refresh_from_db()
        assert (document.status, document.attempts) == (Status.FAILED, 1)
    assert documents.requeue_stuck() == 0


def test_the_bomb_refusal_fits_a_small_memory_cap(tmp_path: Path) -> None:
    """Reliability #17: the parse child refuses the 100,000-entry DOCX under a 256 MB
    address-space limit: the check reads the directory, never the members."""
    path = tmp_path / "members.docx"
    path.write_bytes(many_members(100_000))
    with pytest.raises(ParseError, match="more than 10000"):
        parse_file(path, ".docx", timeout=60, memory_mb=256)


# --- 19. pathological PDFs ---------------------------------------------------------------------

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R"
    b" /Resources << /Font << /F1 5 0 R >> >> >>"
)
HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
WORDS = b"BT /F1 12 Tf 10 100 Td (Pathological but readable) Tj ET"


def stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d%s >>\nstream\n" % (len(data), entries) + data + b"\nendstream"


def one_page(content: bytes, entries: bytes = b"") -> bytes:
    return build_pdf([CATALOG, PAGES, PAGE, stream(content, entries), HELVETICA])


def numbered(objects: list[bytes]) -> tuple[bytes, list[int]]:
    body, offsets = b"%PDF-1.5\n", []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    return body, offsets


def circular_prev_tables() -> bytes:
    """Two xref tables whose trailers' /Prev point at each other."""
    body, offsets = numbered([CATALOG, PAGES, PAGE, stream(WORDS), HELVETICA])
    size = len(offsets) + 1
    table = b"xref\n0 %d\n0000000000 65535 f \n" % size
    table += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R /Prev %010d >>\n"
    first = len(body)
    second = first + len(table) + len(trailer % (size, 0))
    body += table + trailer % (size, second) + table + trailer % (size, first)
    return body + b"startxref\n%d\n%%%%EOF\n" % first


def circular_prev_stream() -> bytes:
    """A cross-reference stream whose /Prev is itself (pypdf GHSA-2rw7-x74f-jg35)."""
    body, offsets = numbered([CATALOG, PAGES, PAGE, stream(WORDS), HELVETICA])
    at = len(body)
    rows = b"\x00\x00\x00\xff" + b"".join(b"\x01" + o.to_bytes(2, "big") + b"\x00" for o in offsets)
    rows += b"\x01" + at.to_bytes(2, "big") + b"\x00"
    entries = b" /Type /XRef /Size %d /W [1 2 1] /Root 1 0 R /Prev %d" % (len(offsets) + 2, at)
    body += b"%d 0 obj\n" % (len(offsets) + 1) + stream(rows, entries) + b"\nendobj\n"
    return body + b"startxref\n%d\n%%%%EOF\n" % at


def broken_xref() -> bytes:
    pdf = one_page(WORDS)
    start = pdf.rindex(b"\nxref\n") + 1
    end = pdf.index(b"trailer", start)
    return pdf[:start] + b"xref\n0 6\nthis is not a cross-reference table\n" + pdf[end:]


HOSTILE_PDFS = {
    "circular-prev.pdf": circular_prev_tables,
    "circular-prev-stream.pdf": circular_prev_stream,
    "broken-xref.pdf": broken_xref,
    # PyPDF2 #329 / GHSA-xcjx-m2pj-8g79: an inline image whose data never ends with EI.
    "inline-image-without-ei.pdf": lambda: one_page(
        WORDS
        + b"\nq 100 0 0 100 0 0 cm BI /W 100 /H 100 /BPC 8 /CS /G ID\n"
        + bytes(range(256)) * 40
    ),
    # GHSA-4vvm-4w3v-6mr8: a content stream ending in a comment with no character after it.
    "comment-at-end.pdf": lambda: one_page(WORDS + b"\n%"),
    # GHSA-hm9v-vj3r-r55m: a malformed object (stray tokens inside a dictionary).
    "malformed-object.pdf": lambda: build_pdf(
        [
            CATALOG,
            PAGES,
            PAGE.replace(b" /Resources", b" ] ) > /Resources"),
            stream(WORDS),
            HELVETICA,
        ]
    ),  # fmt: skip
    # GHSA-2q4j-m29v-hq73: outline items whose /Next loop back (A -> B -> A).
    "outline-loop.pdf": lambda: build_pdf(
        [
            CATALOG.replace(b" >>", b" /Outlines 6 0 R >>"),
            PAGES,
            PAGE,
            stream(WORDS),
            HELVETICA,
            b"<< /Type /Outlines /First 7 0 R /Last 8 0 R /Count 2 >>",
            b"<< /Title (A) /Parent 6 0 R /Next 8 0 R /Dest [3 0 R /Fit] >>",
            b"<< /Title (B) /Parent 6 0 R /Next 7 0 R /Prev 7 0 R /Dest [3 0 R /Fit] >>",
        ]
    ),  # fmt: skip
    # pypdf's malformed /FlateDecode advisory (CVE-2026-27026): a stream that goes bad midway.
    "broken-flate.pdf": lambda: one_page(
        zlib.compress(WORDS)[:-6] + bytes(range(256)) * 400, b" /Filter /FlateDecode"
    ),
}


def test_pathological_pdfs_end_with_a_clear_status_and_the_queue_keeps_flowing(people) -> None:
    """Reliability #19: PDFs with a circular /Prev (xref tables, and an xref stream: pypdf
    GHSA-2rw7-x74f-jg35), a broken xref, an inline image without EI (GHSA-xcjx-m2pj-8g79), a
    content stream ending in a bare comment (GHSA-4vvm-4w3v-6mr8), a malformed object
    (GHSA-hm9v-vj3r-r55m), an outline loop (GHSA-2q4j-m29v-hq73) and a corrupt FlateDecode stream
    (CVE-2026-27026), rebuilt from the advisories' descriptions, each end with a clear status well
    inside the parse time limit; a good document uploaded with them is ready. PDFium reads every
    one of them (it rebuilds the xref and stops at loops), so each is ready with its page's text.
    PDFium's own advisories are Chromium bugs without public files and are not rebuilt here."""
    files = [SimpleUploadedFile(n, build()) for n, build in HOSTILE_PDFS.items()]
    files.append(SimpleUploadedFile("good.txt", b"Expenses are paid monthly."))
    post(people, files)
    for document in Document.objects.all():
        started = time.monotonic()
        pipeline.ingest(document.pk)
        assert time.monotonic() - started < 30, document.original_name
    documents_ = by_name()
    assert {n: d.status for n, d in documents_.items()} == {n: Status.READY for n in documents_}
    for name in HOSTILE_PDFS:
        text = index.search("pathological readable", [people.legal.pk], 20, mode="sparse")
        assert documents_[name].pk in {hit.document_id for hit in text}, name


def test_a_nested_flatedecode_bomb_is_stopped_at_the_memory_cap(tmp_path: Path) -> None:
    """Reliability #19: a content stream deflated twice (/Filter [/FlateDecode /FlateDecode]),
    767 bytes that inflate to 389 KB and then to 400 MB, stops at the parse child's memory cap
    with a clear error; only the child dies."""
    packer, inner = zlib.compressobj(9), b""
    for _ in range(400):
        inner += packer.compress(b"0" * 1_000_000)
    inner += packer.flush()
    pdf = make_stream_pdf(zlib.compress(inner, 9)).replace(
        b"/Filter /FlateDecode", b"/Filter [/FlateDecode /FlateDecode]"
    )
    path = tmp_path / "nested.pdf"
    path.write_bytes(pdf)
    with pytest.raises(ParseError, match="more than 300 MB of memory"):
        parse_file(path, ".pdf", timeout=60, memory_mb=300)


# --- 20. encrypted PDFs ------------------------------------------------------------------------


def test_an_owner_password_pdf_is_read_and_a_user_password_pdf_is_shown_encrypted(
    people, caplog
) -> None:
    """Reliability #20: a PDF locked with a user password ends `encrypted`, shown with its reason
    on the collection page to its manager, with neither password nor traceback in the logs; a
    PDF with only an owner password (restrictions, no password to open) is read (the policy:
    what opens without a password is extracted)."""
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt=StandardEncryption("", "owner-secret", canCopy=0))
    pdf.drawString(50, 800, "Restricted but readable roadmap.")
    pdf.save()
    locked = make_pdf(["The launch date is secret."], password="user-secret")
    post(
        people,
        [
            SimpleUploadedFile("restricted.pdf", buffer.getvalue()),
            SimpleUploadedFile("locked.pdf", locked),
        ],
    )
    ingest_all()
    documents_ = by_name()
    assert documents_["restricted.pdf"].status == Status.READY
    [hit] = index.search("roadmap", [people.legal.pk], 1, mode="sparse")
    assert hit.text == "Restricted but readable roadmap."
    assert documents_["locked.pdf"].status == Status.ENCRYPTED
    page = login(people.owner).get(reverse("ingestion:collection", args=[people.legal.pk]))
    assert "The PDF is encrypted (password-protected)." in page.content.decode()
    assert "secret" not in caplog.text and "Traceback" not in caplog.text


# --- 21. encodings -----------------------------------------------------------------------------

ENCODED = {
    "latin1.txt": ("Meetings with Señor Muñoz are held in Zürich.".encode("latin-1"), "Zürich"),
    "utf16.txt": ("\ufeffThe Göteborg office closes at five.".encode("utf-16-le"), "Göteborg"),
    "shiftjis.txt": ("就業規則：年次有給休暇は、二十日です。".encode("shift_jis"), "就業規則"),
    "invalid-utf8.txt": (
        b"Reimbursement \xff\xfe\xc3\x28 deadline \xe2\x82 is Friday.",
        "deadline",
    ),
    "nul.txt": (b"The company\x00car policy\x00\x00 covers fuel.\x00", "fuel"),
}


def test_text_in_any_encoding_is_ready_and_found_by_a_known_word(people, fake_llm) -> None:
    """Reliability #21: text in Latin-1, UTF-16 LE with a BOM, Shift-JIS, with invalid UTF-8
    sequences and with embedded NUL bytes ends ready, and a search for a known word of each
    returns that file's chunk, decoded. The NUL-free text reaches every database row (pages, the
    query record's retrieved passages): on PostgreSQL (the services profile runs this test too)
    a NUL there would fail the insert."""
    post(people, [SimpleUploadedFile(name, raw) for name, (raw, _) in ENCODED.items()])
    ingest_all()
    documents_ = by_name()
    assert {n: d.status for n, d in documents_.items()} == {n: Status.READY for n in ENCODED}
    for name, (_, word) in ENCODED.items():
        hits = index.search(word, [people.legal.pk], 1, mode="sparse")
        [hit] = hits
        assert hit.document_id == documents_[name].pk and word in hit.text, name
        assert "\x00" not in hit.text
    [hit] = index.search("fuel", [people.legal.pk], 1, mode="sparse")
    assert hit.text == "The companycar policy covers fuel."
    [hit] = index.search("就業規則", [people.legal.pk], 1, mode="sparse")
    assert hit.text == "就業規則：年次有給休暇は、二十日です。"
    ask(people.teammate, "What does the company car policy cover?")
    assert "fuel" in str(QueryRecord.objects.get().retrieved)


# --- 22. hostile filenames ---------------------------------------------------------------------

BOUNDARY = "reliability-boundary"


def raw_upload(people, parts: list[tuple[bytes, bytes]], paths: list[str] = ()):
    """A multipart body written by hand: the test client would strip the names' folders itself.
    Each part is (the Content-Disposition parameters naming the file, its content)."""
    body = b""
    for disposition, content in parts:
        body += b'--%s\r\nContent-Disposition: form-data; name="files"; %s\r\n' % (
            BOUNDARY.encode(),
            disposition,
        )
        body += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    for path in paths:
        body += b'--%s\r\nContent-Disposition: form-data; name="paths"\r\n\r\n' % BOUNDARY.encode()
        body += path.encode() + b"\r\n"
    body += b"--%s--\r\n" % BOUNDARY.encode()
    return login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def test_hostile_names_are_stored_under_generated_paths_and_downloaded_rfc6266_encoded(
    people,
) -> None:
    """Reliability #22: files named `../../etc/cron.d/x`, `/abs/p.pdf`, `..\\..\\win.ini`,
    `%2e%2e%2f` (plain and RFC 2231-encoded), a 300-character Unicode name, names with CR/LF and
    quotes (in the upload, and as an e-mail attachment's name, which never passes Django's
    multipart parser) are stored only under documents/<collection>/<uuid> inside the media root,
    nothing is written anywhere else, and each download's Content-Disposition is RFC 6266:
    ASCII, quoted or `filename*=utf-8''`-encoded, never a CR or LF."""
    media = Path(settings.MEDIA_ROOT)
    before = {p.resolve() for p in media.rglob("*") if p.is_file()} if media.exists() else set()
    mail = (
        b'Subject: Names\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee the attachments.\n"
        b'--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename="../../y.txt"'
        b"\n\nCron rule.\n--b\nContent-Type: text/plain\nContent-Disposition: attachment;"
        b" filename*=utf-8''m%0D%0ASet-Cookie%3A%20a%3Db.txt\n\nInjected.\n--b--\n"
    )
    pdf = make_pdf(["Absolute path."])
    response = raw_upload(
        people,
        [
            (b'filename="../../etc/cron.d/x"', b"* * * * * root id"),
            (b'filename="/abs/p.pdf"', pdf),
            (b'filename="..\\..\\win.ini"', b"[boot]"),
            (b'filename="%2e%2e%2fetc%2fpasswd.txt"', b"Percent one."),
            (b"filename*=UTF-8''%2e%2e%2fetc%2fshadow.txt", b"Percent two."),
            (b'filename="%s.txt"' % ("é" * 300).encode(), b"Long name."),
            (b"filename*=UTF-8''crlf%0D%0ASet-Cookie%3A%20x%3D1.txt", b"CRLF name."),
            (b'filename="quote\\"; x=.txt"', b"Quoted name."),
            (b'filename="names.eml"', mail),
            (b'filename="report.%s"' % (b"x" * 40), b"A suffix longer than the column."),
        ],
        paths=["../../etc/cron.d/x", "/abs/p.pdf"],
    )
    assert response.status_code == 302
    ingest_all()
    ingest_all()  # the mail's attachments were queued by the first pass
    names = set(by_name())
    assert {"x", "p.pdf", "win.ini", "%2e%2e%2fetc%2fpasswd.txt", "shadow.txt"} <= names
    assert {"crlfSet-Cookie: x=1.txt", "y.txt", "mSet-Cookie: a=b.txt"} <= names
    client = login(people.teammate)
    stored = set()
    for document in Document.objects.all():
        assert not re.search(r"[\r\n/\\\x00]", document.original_name)
        assert not re.search(r"[\r\n\\\x00]", document.path) and not document.path.startswith("/")
        assert ".." not in document.path.split("/") and len(document.original_name) <= 200
        assert len(document.extension) <= 16  # PostgreSQL refuses a longer one: the upload fails
        if not document.file:
            continue
        assert re.fullmatch(rf"documents/{people.legal.pk}/[0-9a-f]{{32}}", document.file.name)
        stored.add(Path(document.file.path).resolve())
        disposition = download(client, document)["Content-Disposition"]
        assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
        assert disposition.count("filename") == 1, disposition
    after = {p.resolve() for p in media.rglob("*") if p.is_file()}
    assert after - before == stored  # nothing else was written inside the media root
    assert not (media.parent / "etc").exists() and not Path("/abs").exists()
    dispositions = {
        d.original_name: download(client, d)["Content-Disposition"]
        for d in Document.objects.exclude(file="")
    }
    long_name = next(n for n in dispositions if n.startswith("é"))
    assert dispositions[long_name] == "attachment; filename*=utf-8''" + "%C3%A9" * 196 + ".txt"
    assert dispositions['quote"; x=.txt'] == 'attachment; filename="quote\\"; x=.txt"'
    assert dispositions["p.pdf"] == 'inline; filename="p.pdf"'
    assert Document.objects.get(original_name="p.pdf").path == "abs"


# --- 18 and 23. references are never fetched ---------------------------------------------------


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it: the stand-in for an egress
    log. A connection is completed by the kernel even before it is accepted."""

    def __enter__(self) -> "Listener":
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.socket.setblocking(False)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        return self

    def connections(self) -> int:
        count = 0
        while True:
            try:
                connection, _ = self.socket.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def __exit__(self, *exc: object) -> None:
        self.socket.close()


def docx_with_external_references(url: str) -> bytes:
    docx = make_docx(["Travel policy: trains are booked in second class."])
    source = zipfile.ZipFile(io.BytesIO(docx))
    external = "".join(
        f'<Relationship Id="rIdEvil{n}" TargetMode="External" Target="{url}/{target}" '
        f'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}"/>'
        for n, (kind, target) in enumerate(
            [("hyperlink", "link"), ("image", "image.png"), ("attachedTemplate", "t.dotm"),
             ("oleObject", "ole.bin"), ("frame", "frame.html")]
        )
    )  # fmt: skip
    rels = source.read("word/_rels/document.xml.rels").replace(
        b"</Relationships>", external.encode() + b"</Relationships>"
    )
    body = (
        '<w:p><w:hyperlink r:id="rIdEvil0"><w:r><w:t>Booking portal</w:t></w:r></w:hyperlink></w:p>'
        f"<w:p><w:fldSimple w:instr='INCLUDEPICTURE \"{url}/pic.png\" \\d'>"
        "<w:r><w:t>picture</w:t></w:r></w:fldSimple></w:p>"
        f"<w:p><w:fldSimple w:instr='INCLUDETEXT \"{url}/text.docx\"'>"
        "<w:r><w:t>included</w:t></w:r></w:fldSimple></w:p>"
    )
    document = source.read("word/document.xml").replace(b"<w:body>", b"<w:body>" + body.encode())
    return replace_part(
        replace_part(docx, "word/_rels/document.xml.rels", rels), "word/document.xml", document
    )


def test_references_inside_documents_are_never_fetched(people) -> None:
    """Reliability #23, #18: images, stylesheets, scripts, frames and links in HTML and Markdown;
    external relationships (hyperlink, image, attached template, OLE object, frame) and
    INCLUDEPICTURE/INCLUDETEXT fields in a DOCX; a WEBSERVICE formula in an XLSX; a remote image,
    a message/external-body part and a link in an e-mail; URI actions and a link annotation in a
    PDF; an XXE entity pointing at http://127.0.0.1 in a DOCX: all point at a listener on
    127.0.0.1, which receives no connection while every file is parsed. The documents are ready
    with their text (the XXE one fails, its DTD refused unexpanded). Ingestion fetches nothing:
    there is no URL ingestion at all (a `url` field sent to the upload creates nothing), so
    redirects to 127.0.0.1 and file:// URLs have nothing to follow."""
    with Listener() as listener:
        url = listener.url
        html = (
            f'<html><head><link rel="stylesheet" href="{url}/s.css"><script src="{url}/s.js">'
            f'</script><meta http-equiv="refresh" content="0; url={url}/go"></head><body>'
            f'<img src="{url}/pixel.gif"><iframe src="{url}/frame"></iframe>'
            f'<object data="{url}/o.swf"></object><p>Parking <a href="{url}/map">permits</a>'
            " are issued by reception.</p></body></html>"
        )
        markdown = f"# Canteen\n\n![menu]({url}/menu.png) Lunch is served at noon. <{url}/x>"
        mail = (
            "Subject: Newsletter\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="b1"\n\n'
            '--b1\nContent-Type: multipart/alternative; boundary="b2"\n\n'
            f"--b2\nContent-Type: text/plain\n\nThe gym opens at six: {url}/gym\n"
            f'--b2\nContent-Type: text/html\n\n<p>The gym opens at six.<img src="{url}/t.gif">'
            "</p>\n--b2--\n"
            f'--b1\nContent-Type: message/external-body; access-type=URL; URL="{url}/remote"\n\n'
            "Content-Type: text/plain\n\n--b1--\n"
        )
        pdf = build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /URI /URI (%s/open) >> >>"
                % url.encode(),
                PAGES,
                PAGE[: -len(b" >>")] + b" /Annots [6 0 R] >>",
                stream(b"BT /F1 12 Tf 10 100 Td (Visitors sign in at the desk.) Tj ET"),
                HELVETICA,
                b"<< /Type /Annot /Subtype /Link /Rect [0 0 300 200]"
                b" /A << /S /URI /URI (%s/annot) >> >>" % url.encode(),
            ]
        )
        xxe = (
            f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e SYSTEM "{url}/xxe">]>'
            "<w:document>&e;</w:document>"
        ).encode()
        files = [
            SimpleUploadedFile("page.html", html.encode()),
            SimpleUploadedFile("notes.md", markdown.encode()),
            SimpleUploadedFile("travel.docx", docx_with_external_references(url)),
            SimpleUploadedFile(
                "rates.xlsx", make_xlsx({"Rates": [["Mileage", f'=WEBSERVICE("{url}/rate")']]})
            ),
            SimpleUploadedFile("news.eml", mail.encode()),
            SimpleUploadedFile("visitors.pdf", pdf),
            SimpleUploadedFile("xxe.docx", make_docx(["x"], document_xml=xxe)),
        ]
        post(people, files, url=f"{url}/ingest-me")
        post(people, [], url="file:///etc/passwd")
        post(people, [], url="http://169.254.169.254/latest/meta-data/")
        ingest_all()
        ingest_all()
        assert listener.connections() == 0
    documents_ = by_name()
    statuses = {n: d.status for n, d in documents_.items()}
    assert statuses.pop("xxe.docx") == Status.FAILED
    assert "XML entities" in documents_["xxe.docx"].error
    assert set(statuses.values()) == {Status.READY}, statuses
    for word in ("permits", "noon", "trains", "Mileage", "gym", "Visitors"):
        assert index.search(word, [people.legal.pk], 1, mode="sparse"), word
