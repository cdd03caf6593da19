import io
import json
import os
import zipfile
import zlib
from pathlib import Path

import pytest

from ingestion import parsing
from ingestion.parsing import Encrypted, Page, ParseError, decode_text, parse_file
from tests.conftest import shared_fixture
from tests.factories import (
    build_pdf,
    make_docx,
    make_pdf,
    make_pptx,
    make_stream_pdf,
    make_xlsx,
)


def parse(path: Path, extension: str | None = None, **limits: int) -> list[Page]:
    return parse_file(
        path,
        extension or path.suffix.lower(),
        timeout=limits.get("timeout", 60),
        memory_mb=limits.get("memory_mb", 1024),
        outdir=limits.get("outdir"),  # type: ignore[arg-type]
    ).pages


def text_of(pages: list[Page]) -> str:
    return "\n".join(p.text for p in pages)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_it_keeps_pdf_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(["The first page talks about apples.", "The second page covers pears."])
    pages = parse(write(tmp_path, "a.pdf", pdf))
    assert [p.number for p in pages] == [1, 2]
    assert "apples" in pages[0].text and "pears" in pages[1].text


def test_it_reads_docx_paragraphs_and_tables_with_headers(tmp_path: Path) -> None:
    docx = make_docx(["Retention is seven years."], table=[["Record", "Years"], ["Invoice", "10"]])
    pages = parse(write(tmp_path, "a.docx", docx))
    assert "Retention is seven years." in text_of(pages)
    assert "Record: Invoice; Years: 10" in text_of(pages)


def test_docx_headings_become_sections(tmp_path: Path) -> None:
    docx = make_docx(["Intro text."], headings={"Refunds": "Refunds take 14 days."})
    pages = parse(write(tmp_path, "a.docx", docx))
    refunds = next(p for p in pages if p.heading == "Refunds")
    assert "14 days" in refunds.text


def test_pptx_gives_one_page_per_slide_with_notes(tmp_path: Path) -> None:
    pptx = make_pptx(
        [("Budget", "Travel is capped.", "Say it twice."), ("Hiring", "Two roles.", "")]
    )
    pages = parse(write(tmp_path, "a.pptx", pptx))
    assert [(p.number, p.heading) for p in pages] == [(1, "Budget"), (2, "Hiring")]
    assert "Speaker notes: Say it twice." in pages[0].text


def test_xlsx_gives_one_page_per_sheet_rows_with_headers(tmp_path: Path) -> None:
    xlsx = make_xlsx({"Prices": [["Item", "Price"], ["Tea", 3]], "Staff": [["Name"], ["Ana"]]})
    pages = parse(write(tmp_path, "a.xlsx", xlsx))
    assert [(p.number, p.heading) for p in pages] == [(1, "Prices"), (2, "Staff")]
    assert "Item: Tea; Price: 3" in pages[0].text


def test_csv_rows_keep_headers_in_any_encoding(tmp_path: Path) -> None:
    csv = "Stadt;Einwohner\nMünchen;1500000\n".encode("cp1252")
    [page] = parse(write(tmp_path, "a.csv", csv))
    assert "Stadt: München; Einwohner: 1500000" in page.text


def test_markdown_sections_carry_their_heading(tmp_path: Path) -> None:
    md = b"# Guide\n\nHello.\n\n## Parking\n\nLevel -2 is for visitors.\n"
    pages = parse(write(tmp_path, "a.md", md))
    assert [p.heading for p in pages] == ["Guide", "Parking"]


def test_it_strips_html_boilerplate(tmp_path: Path) -> None:
    html = b"<html><nav>Menu Home</nav><script>alert(1)</script><p>Body text here.</p></html>"
    [page] = parse(write(tmp_path, "a.html", html))
    assert "Body text here." in page.text
    assert "alert" not in page.text and "Menu" not in page.text


def test_eml_keeps_headers_and_writes_attachments_out(tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["Subject"] = "hr@example.com", "Leave policy"
    message.set_content("See the attached policy.")
    message.add_attachment(b"Leave is 25 days.", maintype="text", subtype="plain", filename="p.txt")
    out = tmp_path / "out"
    out.mkdir()
    parsed = parse_file(
        write(tmp_path, "m.eml", bytes(message)), ".eml", timeout=60, memory_mb=1024, outdir=out
    )
    assert "Subject: Leave policy" in parsed.pages[0].text
    assert "See the attached policy." in parsed.pages[0].text
    [attachment] = parsed.attachments
    assert attachment.name == "p.txt"
    assert Path(attachment.path).read_bytes() == b"Leave is 25 days."
    assert Path(attachment.path).parent == out and "p.txt" not in attachment.path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Grüße".encode(), "Grüße"),
        ("Grüße".encode("cp1252"), "Grüße"),
        (b"\xef\xbb\xbf" + "Grüße".encode(), "Grüße"),
        ("Grüße".encode("utf-16"), "Grüße"),
        ("Grüße aus Köln".encode("utf-16-le"), "Grüße aus Köln"),
        ("Métro, Genève".encode("cp1252"), "Métro, Genève"),  # valid Shift-JIS bytes too
        (
            "就業規則：年次有給休暇は二十日です。".encode("shift_jis"),
            "就業規則：年次有給休暇は二十日です。",
        ),
    ],
)
def test_it_decodes_common_encodings(raw: bytes, expected: str) -> None:
    """Reliability #21: UTF-8, Windows-1252, UTF-8 with BOM, UTF-16 with and without BOM,
    Shift-JIS."""
    assert decode_text(raw) == expected


def test_it_removes_nul_bytes_and_survives_invalid_utf8(tmp_path: Path) -> None:
    """Reliability #21: NUL bytes removed, invalid UTF-8 decoded."""
    [page] = parse(write(tmp_path, "a.txt", b"abc\x00def \xff\xfe\xfa caf\xe9"))
    assert page.text.startswith("abcdef") and "café" in page.text


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def ooxml_bomb() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": b"<Types/>",
            "word/document.xml": b"<w:document>" + b" " * 50_000_000,
        }
    )


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<w:document>&lol2;</w:document>"
)
XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "The file is empty."),
        ("a.exe", b"MZ\x90\x00", "not supported"),
        ("blank.txt", b"   \n\n  ", "No text could be extracted"),
        ("fake.pdf", b"<html>not a pdf</html>", "named .pdf but its content is text"),
        ("fake.docx", b"\x00\x01binary" * 100, "named .docx but its content is text"),
        ("zip.docx", zip_bytes({"a.txt": b"x"}), "named .docx but its content is a ZIP"),
        ("prog.txt", b"MZ\x90\x00" + bytes(range(256)) * 8, "content is a program"),
        ("noise.txt", bytes(range(1, 32)) * 100, "looks like binary data"),
        ("bomb.docx", ooxml_bomb(), "ZIP bomb"),
        ("laughs.docx", make_docx(["x"], document_xml=BILLION_LAUGHS), "XML entities"),
        ("xxe.xlsx", make_xlsx({"S": [["a"]]}, part=("xl/workbook.xml", XXE)), "XML entities"),
        ("trunc.pdf", make_pdf(["Hello"])[:400], "PDF"),
    ],
)
def test_it_explains_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    """Reliability #14, #15, #17, #18, #19: an empty file, a type mismatch (HTML as .pdf, binary as
    .docx, a program as .txt), an OOXML bomb, billion laughs and XXE, a truncated PDF: each a clear
    ParseError."""
    with pytest.raises(ParseError, match=message):
        parse(write(tmp_path, name, content))


def test_it_reports_encrypted_pdfs_without_the_secret(tmp_path: Path) -> None:
    """Reliability #20: a user-password PDF is reported encrypted, without the password or a
    traceback."""
    pdf = make_pdf(["secret"], password="hunter2")
    with pytest.raises(Encrypted, match="encrypted") as caught:
        parse(write(tmp_path, "locked.pdf", pdf))
    assert "hunter2" not in str(caught.value) and "Traceback" not in str(caught.value)


def deflate(parts: list[bytes]) -> bytes:
    packer, out = zlib.compressobj(9), b""
    for part in parts:
        out += packer.compress(part)
    return out + packer.flush()


def text_page(contents: int) -> bytes:
    return (
        b"<< /Type /Page /MediaBox [0 0 100 100] /Contents %d 0 R"
        b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (contents, contents + 1)
    )


TEXT_STREAM = b"<< /Length 33 >>\nstream\nBT /F1 12 Tf 1 1 Td (Hello) Tj ET\nendstream"
HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def test_it_stops_a_parser_that_runs_too_long(tmp_path: Path) -> None:
    """Reliability #19: a pathological PDF is stopped at the parse child's wall-clock limit."""
    # A real pathological PDF of 1 KB: six levels of page-tree nodes, each listing the next ten
    # times, make one page a million pages. (The old case, a page of a million text operators,
    # is no longer surely slower than 3 seconds: PDFium drops the overlapping glyphs.)
    nodes = [
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b"%d 0 R " % (level + 3) * 10, 10 ** (6 - level))
        for level in range(6)
    ]
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", *nodes, text_page(9), TEXT_STREAM, HELVETICA]
    with pytest.raises(ParseError, match="longer than 3 seconds"):
        parse(write(tmp_path, "slow.pdf", build_pdf(objects)), timeout=3)


def test_a_pdf_page_tree_that_loops_is_read_once(tmp_path: Path) -> None:
    """Reliability #19: a looping page tree is read once."""
    # PDFium skips a node it has visited, so the loop costs nothing and the one real page is
    # read once (pypdf refused the file as cyclic).
    pdf = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R 2 0 R] /Count 1000000000 >>",
            text_page(4),
            TEXT_STREAM,
            HELVETICA,
        ]
    )
    assert [(p.number, p.text) for p in parse(write(tmp_path, "loop.pdf", pdf))] == [(1, "Hello")]


def test_it_stops_a_pdf_stream_that_balloons(tmp_path: Path) -> None:
    """Reliability #19: a FlateDecode bomb is stopped at the memory cap."""
    # A content stream that inflates 1000-fold, to 400 MB. PDFium has no inflate limit of its
    # own: it aborts when an allocation fails under the memory limit, which parse_file reports
    # as a crash. Either way only the child dies.
    pdf = make_stream_pdf(deflate([b"0" * 1_000_000] * 400))
    with pytest.raises(ParseError, match="memory"):
        parse(write(tmp_path, "balloon.pdf", pdf), memory_mb=300)


def test_the_memory_limit_stops_a_parser(tmp_path: Path) -> None:
    """Reliability #19: the parse child's memory cap stops a parser."""
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        for _ in range(40):
            f.write(b"word " * 1_000_000)
    with pytest.raises(ParseError, match="more than 150 MB of memory"):
        parse(big, memory_mb=150)


SECRETS = ["SECRET_KEY", "DATABASE_URL", "OIDC_RP_CLIENT_SECRET", "LLM_API_KEY", "CACHE_URL"]


def test_the_parse_child_sees_no_secrets_of_the_environment(tmp_path: Path, monkeypatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"CANARY-{name}")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    # The real launch (command, environment, limits); only the module run is the reporter.
    monkeypatch.setattr(parsing, "CHILD_MODULE", "tests.ingestion.env_child")
    [page] = parse(write(tmp_path, "notes.txt", b"Lunch is at noon."), memory_mb=512)
    env = json.loads(page.text)
    assert not [k for k, v in env.items() if "CANARY" in v]
    assert env["PATH"] == os.environ["PATH"] and env["LC_ALL"] == "C.UTF-8"
    assert env["ENCLAVE_PARSE_MEMORY_MB"] == "512" and env["OMP_THREAD_LIMIT"] == "1"


def test_the_real_child_parses_with_secrets_in_our_environment(tmp_path: Path, monkeypatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"CANARY-{name}")
    pages = parse(write(tmp_path, "notes.pdf", make_pdf(["Lunch is at noon."])))
    assert text_of(pages).strip() == "Lunch is at noon."


def test_ocr_reads_an_image_only_pdf_page(tmp_path: Path) -> None:
    pages = parse(shared_fixture("pdf/ocr_test.pdf"))
    assert "Docling bundles PDF document conversion" in text_of(pages)


@pytest.mark.parametrize(
    ("relative", "needle"),
    [
        ("pdf/layout-parser-paper-fast.pdf", "LayoutParser"),
        ("pdf/copy-protected.pdf", "LayoutParser"),
        ("docx/word_sample.docx", "Swimming in the lake"),
        ("docx/docx-tables.docx", "Header Col 1: Lorem ipsum"),
        ("pptx/sample-presentation.pptx", "Table: 1; A: A1; B: B1"),
        ("xlsx/stanley-cups.xlsx", "Team: Blues; Location: STL; Stanley Cups: 1"),
        ("xlsx/csv-comma.csv", "First Name:"),
        ("xlsx/stanley-cups-utf-16.csv", "Team: Maple Leafs"),
        ("html/wiki_duck.html", "Duck is the common name"),
        ("html/fake-html-cp1252.html", "Die schöne Frau"),
        ("html/example-steelJIS-datasheet-utf-16.html", "SteelJIS"),
        ("md/wiki.md", "International Business Machines"),
        ("txt/fake-text-utf-16.txt", "This is a test document to use for unit tests."),
        ("txt/fake-text-utf-16-be.txt", "This is a test document to use for unit tests."),
        ("md/umlauts-non-utf8.md", "ö"),
        ("email/fake-email.eml", "Subject: Test Email"),
        ("email/fake-email.msg", "Subject: Test Email"),
        ("other/winter-sports.epub", "Winter Sports in Switzerland"),
        ("other/fake.odt", "Header row: Color; Mon: Blue"),
        ("other/eng_spa_mult.rtf", "All human beings are born free"),
        ("pdf/loremipsum-flat.pdf", "Lorem ipsum"),
    ],
)
def test_it_parses_real_world_files(relative: str, needle: str) -> None:
    assert needle in text_of(parse(shared_fixture(relative)))


def test_real_pptx_slides_keep_their_numbers() -> None:
    pages = parse(shared_fixture("pptx/powerpoint_sample.pptx"))
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[1].heading == "Second slide title"
    assert "Speaker notes: Some notes on the second slide." in pages[1].text


def test_real_xlsx_sheets_become_pages() -> None:
    pages = parse(shared_fixture("xlsx/xlsx_01.xlsx"))
    assert [p.heading for p in pages][:3] == ["Sheet1", "Sheet2", "Sheet3"]


def test_real_epub_chapters_follow_the_spine() -> None:
    pages = parse(shared_fixture("other/epub_purvis_poetry.epub"))
    assert "Titlepage" in pages[0].text
    assert [p.heading for p in pages][1:] == [
        "Imprint",
        "The Grave of the Slave",
        "Colophon",
        "Uncopyright",
    ]
    assert [p.number for p in pages] == sorted(p.number for p in pages)


def test_real_mail_attachments_come_out(tmp_path: Path) -> None:
    for name in ("email/fake-email-attachment.eml", "email/fake-email-attachment.msg"):
        parsed = parse_file(
            shared_fixture(name), Path(name).suffix, timeout=60, memory_mb=1024, outdir=tmp_path
        )
        assert [a.name for a in parsed.attachments] == ["fake-attachment.txt"]


@pytest.mark.parametrize(
    "relative",
    [
        "pdf/libreoffice-writer-password.pdf",
        "pdf/2206.01062_pg3.pdf",
        "xlsx/password_protected.xlsx",
        "email/fake-encrypted.eml",
        "email/fake-encrypted.msg",
    ],
)
def test_it_reports_real_encrypted_files(relative: str) -> None:
    """Reliability #20: real encrypted files end encrypted."""
    with pytest.raises(Encrypted, match="encrypted"):
        parse(shared_fixture(relative))


def test_a_markdown_heading_followed_by_a_long_run_of_spaces_parses_quickly(tmp_path: Path) -> None:
    md = b"# Guide ##\n\nHello.\n# a" + b" " * 200_000 + b"x\nText.\n"
    pages = parse(write(tmp_path, "a.md", md), timeout=5)
    assert [p.heading[:1] for p in pages] == ["G", "a"] and pages[0].heading == "Guide"
